package report

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/fixfleet/fixfleet/internal/atomicfile"
	"github.com/fixfleet/fixfleet/internal/render"
)

// Write writes the report in format f. table names one table (TableNames)
// for the table, csv and markdown formats; "" means every table, except
// for csv, which holds one table and defaults to TableVMs. HTML and JSON
// are the whole report: a table with them is an error.
func (r *Report) Write(w io.Writer, f render.Format, table string) error {
	if err := CheckTable(f, table); err != nil {
		return err
	}
	switch f {
	case render.FormatHTML:
		return r.HTML(w)
	case render.FormatJSON:
		return render.JSON(w, r)
	case render.FormatCSV:
		if table == "" {
			table = TableVMs
		}
		return render.Render(w, f, nil, r.CSV(table))
	case render.FormatMarkdown:
		if table == "" {
			return r.Markdown(w)
		}
	}
	if table == "" {
		return render.Render(w, f, nil, r.Tables()...)
	}
	t, _ := r.Table(table)
	return render.Render(w, f, nil, t)
}

// CheckTable says whether table ("" for none) is a table of the report
// that format f can write alone.
func CheckTable(f render.Format, table string) error {
	if table == "" {
		return nil
	}
	if _, err := Columns(table); err != nil {
		return err
	}
	if f == render.FormatHTML || f == render.FormatJSON {
		return fmt.Errorf("table %s: the %s report is the whole report; a table goes with the table, csv and markdown formats", table, f)
	}
	return nil
}

// WriteCSVDir writes every table as dir/<table>.csv (each file whole or
// not at all), creating dir. It returns the files written.
func (r *Report) WriteCSVDir(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var files []string
	for _, n := range TableNames() {
		var b bytes.Buffer
		if err := render.Render(&b, render.FormatCSV, nil, r.CSV(n)); err != nil {
			return files, err
		}
		p := filepath.Join(dir, n+".csv")
		if err := atomicfile.Write(p, b.Bytes()); err != nil {
			return files, err
		}
		files = append(files, p)
	}
	return files, nil
}

// Extension is the file extension of a format.
func Extension(f render.Format) string {
	switch f {
	case render.FormatTable:
		return "txt"
	case render.FormatMarkdown:
		return "md"
	}
	return string(f)
}

// FileName turns a tenant's name into a file name (without extension) that
// is safe on every file system and cannot leave its directory: lower-case
// letters, digits, '-', '_' and inner '.', at most 60 characters. A name
// that had to be changed (or is empty, or reserved on Windows) gets the
// first 8 hex digits of its SHA-256, so distinct tenants never share a
// file.
func FileName(tenant string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(tenant) {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
		if !ok {
			if !dash {
				b.WriteByte('-')
			}
			dash = true
			continue
		}
		b.WriteRune(r)
		dash = false
	}
	s := strings.Trim(b.String(), "-.")
	if len(s) > 60 {
		s = strings.Trim(s[:60], "-.")
	}
	if s == tenant && s != "" && !reserved(s) {
		return s
	}
	sum := sha256.Sum256([]byte(tenant))
	if s == "" {
		return "tenant-" + hex.EncodeToString(sum[:4])
	}
	return s + "-" + hex.EncodeToString(sum[:4])
}

// reserved reports the names Windows refuses for a file, whatever the
// extension.
func reserved(s string) bool {
	base, _, _ := strings.Cut(s, ".")
	switch base {
	case "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8", "com9",
		"lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9":
		return true
	}
	return false
}

// Loader builds the report of one tenant ("" for all).
type Loader func(tenant string) (*Report, error)

// WritePerTenant writes one report per tenant of the run into dir (created
// if needed), named FileName(tenant) plus the format's extension, each
// file whole or not at all. It returns the tenant of each file written.
func WritePerTenant(dir string, tenants []string, load Loader, f render.Format, table string) (map[string]string, error) {
	if len(tenants) == 0 {
		return nil, errors.New("the run has no VMs: there is no tenant to report on")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	written := map[string]string{}
	for _, t := range tenants {
		r, err := load(t)
		if err != nil {
			return written, err
		}
		var b bytes.Buffer
		if err := r.Write(&b, f, table); err != nil {
			return written, err
		}
		p := filepath.Join(dir, FileName(t)+"."+Extension(f))
		if other, dup := written[p]; dup {
			return written, fmt.Errorf("tenants %q and %q would share the file %s", other, t, p)
		}
		if err := atomicfile.Write(p, b.Bytes()); err != nil {
			return written, err
		}
		written[p] = t
	}
	return written, nil
}

// Package outflag is the CLI's output flags: -o/--output FORMAT (the
// kubectl habit), the older --format spelling of it, and --out-file for a
// command that writes a document to a file.
//
// For one release, a command that used to take -o FILE (plan) still accepts
// a value that is not a format name as that file, with a deprecation
// warning.
package outflag

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/fixfleet/fixfleet/internal/render"
)

// Flags are one command's output flags. Use Add, then Resolve.
type Flags struct {
	output, format, file string
	// legacyFile: -o FILE (not a format name) is taken as --out-file.
	legacyFile bool
	table      string
}

// AddTable registers --table NAME on fs, for a command that prints
// several tables: see Tables.
func (f *Flags) AddTable(fs *pflag.FlagSet, names ...string) {
	fs.StringVar(&f.table, "table", "", "only this table ("+strings.Join(names, ", ")+"); -o csv writes one table, the first by default")
}

// Tables returns the tables to write in format (render.Select with
// --table): CSV is always one table with stable columns. A bad --table is
// a *UsageError.
func (f *Flags) Tables(format render.Format, tables []render.Table) ([]render.Table, error) {
	out, err := render.Select(format, tables, f.table)
	if err != nil {
		return nil, &UsageError{fmt.Errorf("--table: %w", err)}
	}
	return out, nil
}

// Add registers -o/--output and the hidden --format alias on fs; with
// fileHelp, also --out-file (described by fileHelp), and -o FILE is then
// accepted as --out-file with a warning.
func (f *Flags) Add(fs *pflag.FlagSet, fileHelp string) {
	fs.StringVarP(&f.output, "output", "o", "", "output format: "+strings.Join(render.FormatNames(), ", ")+" (default table)")
	fs.StringVar(&f.format, "format", "", "same as --output")
	_ = fs.MarkHidden("format") // the flag exists: MarkHidden cannot fail
	if fileHelp != "" {
		fs.StringVar(&f.file, "out-file", "", fileHelp)
		f.legacyFile = true
	}
}

// UsageError is a bad value of an output flag.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Resolve returns the output format and the --out-file ("" when none).
// A deprecated -o FILE is reported to warn (which may be nil). Errors are
// *UsageError and name the flag and the valid formats.
func (f *Flags) Resolve(warn io.Writer) (render.Format, string, error) {
	out, file := f.output, f.file
	if out != "" && f.legacyFile {
		if _, err := render.ParseFormat(out); err != nil {
			if file != "" {
				return "", "", &UsageError{fmt.Errorf("-o %q is not an output format (%s), and --out-file is set too: give one file, with --out-file", out, strings.Join(render.FormatNames(), ", "))}
			}
			if warn != nil {
				fmt.Fprintf(warn, "fixfleet: warning: -o FILE is deprecated and will be removed in the next release: -o takes a format (%s); write the file with --out-file %s\n",
					strings.Join(render.FormatNames(), ", "), out)
			}
			out, file = "", out
		}
	}
	name, flag := out, "--output"
	switch {
	case out != "" && f.format != "" && !strings.EqualFold(out, f.format):
		return "", "", &UsageError{errors.New("--output and --format disagree: give the format once, with -o FORMAT")}
	case out == "" && f.format != "":
		name, flag = f.format, "--format"
	case out == "" && f.format == "":
		name = string(render.FormatTable)
	}
	format, err := render.ParseFormat(name)
	if err != nil {
		return "", "", &UsageError{fmt.Errorf("%s: %w", flag, err)}
	}
	return format, file, nil
}

package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/fixfleet/fixfleet/internal/render"
)

// Markdown writes the report for a ticket: the summary, the outcomes per
// tenant, and the VMs for a person grouped by reason (every VM named once,
// under its group). Untrusted text is escaped as render escapes table
// cells.
func (r *Report) Markdown(w io.Writer) error {
	tenants, _ := r.Table(TableTenants)
	if err := render.Render(w, render.FormatMarkdown, nil, r.summaryTable(), tenants); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n## For a person: %d VMs (%d flagged, %d failed), by reason\n", r.Counts.ForAPerson(), r.Counts.Flagged, r.Counts.Failed)
	if len(r.ForAPerson) == 0 {
		b.WriteString("\nNone.\n")
	}
	for _, g := range r.ForAPerson {
		code := string(g.Code)
		if code == "" {
			code = "no reason code"
		}
		fmt.Fprintf(&b, "\n### %s: %s (%d VMs)\n\n%s\n", render.MarkdownText(string(g.Status)), render.MarkdownText(code), len(g.VMs), render.MarkdownText(g.Description))
		if g.Common != "" {
			fmt.Fprintf(&b, "All say: %s\n", render.MarkdownText(g.Common))
		}
		b.WriteString("\n")
		for _, k := range g.Kinds {
			names := make([]string, len(k.VMs))
			for i, v := range k.VMs {
				names[i] = v.Tenant + "/" + v.Account + "/" + displayName(v)
			}
			line := fmt.Sprintf("%d VMs: %s", len(k.VMs), strings.Join(names, ", "))
			if k.Detail != "" {
				line = kindDetail(k) + " — " + line
			}
			fmt.Fprintf(&b, "- %s\n", render.MarkdownText(line))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

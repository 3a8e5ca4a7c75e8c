package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/fixfleet/fixfleet/internal/render"
)

// Markdown writes the report for a ticket: the summary, the outcomes per
// tenant, the VMs for a person grouped by outcome and reason (every VM
// named once, under its group), and the original OS disks kept. Untrusted text is escaped as render escapes table
// cells.
func (r *Report) Markdown(w io.Writer) error {
	tenants, _ := r.Table(TableTenants)
	if err := render.Render(w, render.FormatMarkdown, nil, r.summaryTable(), tenants); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n## %s\n", r.ForAPersonTitle())
	if len(r.ForAPerson) == 0 {
		b.WriteString("\nNone.\n")
	}
	for _, g := range r.ForAPerson {
		fmt.Fprintf(&b, "\n### %s (%d VMs)\n\n%s\n", render.MarkdownText(g.label()), len(g.VMs), render.MarkdownText(g.Description))
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
	if _, err := io.WriteString(w, b.String()); err != nil || len(r.Kept) == 0 {
		return err
	}
	kept, _ := r.Table(TableKept)
	_, err := io.WriteString(w, "\n")
	if err == nil {
		err = render.Render(w, render.FormatMarkdown, nil, kept)
	}
	return err
}

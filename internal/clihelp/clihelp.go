// Package clihelp gives every command of a cobra tree the same habits:
// argument errors marked as usage errors, examples from one text, and the
// exit codes in each command's help.
package clihelp

import (
	"cmp"
	"strings"

	"github.com/spf13/cobra"
)

// Examples parses a text of sections "### COMMAND PATH\n<example lines>"
// into the Example text of each command path.
func Examples(text string) map[string]string {
	out := map[string]string{}
	for _, sec := range strings.Split(text, "### ")[1:] {
		path, ex, _ := strings.Cut(sec, "\n")
		out[strings.TrimSpace(path)] = strings.TrimRight(ex, "\n")
	}
	return out
}

// Apply gives c and its subcommands: argument errors passed through usage
// (e.g. marking them as bad input), the Example of their path in
// examples, and exitCodes after their long help (not on c itself, whose
// help has them already).
func Apply(c *cobra.Command, examples map[string]string, exitCodes string, usage func(error) error) {
	if args := c.Args; args != nil {
		c.Args = func(cmd *cobra.Command, a []string) error {
			if err := args(cmd, a); err != nil {
				return usage(err)
			}
			return nil
		}
	}
	c.Example = examples[c.CommandPath()]
	if c.HasParent() {
		c.Long = strings.TrimSpace(cmp.Or(c.Long, c.Short)) + "\n\n" + exitCodes
	}
	for _, s := range c.Commands() {
		Apply(s, examples, exitCodes, usage)
	}
}

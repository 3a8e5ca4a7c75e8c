package render

import (
	"fmt"
	"strings"
)

// Select returns the tables a command writes in format f when --table is
// table: every table, except that CSV is one table with stable columns
// (the first, the command's main table, when table is ""); a named table
// alone in the table, csv and markdown formats. An unknown name, or a
// name with another format, is an error naming the tables.
func Select(f Format, tables []Table, table string) ([]Table, error) {
	if table == "" {
		if f == FormatCSV && len(tables) > 1 {
			return tables[:1], nil
		}
		return tables, nil
	}
	var names []string
	for _, t := range tables {
		if t.Name == "" {
			continue
		}
		if t.Name == table {
			if f != FormatTable && f != FormatCSV && f != FormatMarkdown {
				return nil, fmt.Errorf("--table %s goes with -o table, csv or markdown, not %s", table, f)
			}
			return []Table{t}, nil
		}
		names = append(names, t.Name)
	}
	return nil, fmt.Errorf("no table %q here: the tables are %s", table, strings.Join(names, ", "))
}

package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/llmgateway/caddy-llm-gateway/internal/money"
)

// writeJSON prints a JSON answer indented, numbers as the gateway wrote
// them.
func writeJSON(w io.Writer, data []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, data, "", "  "); err != nil {
		return fmt.Errorf("the gateway answered invalid JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// decode reads a JSON answer keeping numbers exact.
func decode(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("the gateway answered unexpected JSON: %w", err)
	}
	return nil
}

// cell formats one JSON value for a table.
func cell(v any) string {
	switch v := v.(type) {
	case nil:
		return "-"
	case string:
		if v == "" {
			return "-"
		}
		return v
	case json.Number:
		return v.String()
	case bool:
		if v {
			return "yes"
		}
		return "no"
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = cell(x)
		}
		if len(parts) == 0 {
			return "-"
		}
		return strings.Join(parts, ",")
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// writeTable prints rows under a header, aligned.
func writeTable(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.ToUpper(strings.Join(header, "\t")))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// showList prints a list answer as a table of columns, or empty when it
// is empty.
func (e *env) showList(columns []string, empty string) func([]byte) error {
	return func(data []byte) error {
		var items []map[string]any
		if err := decode(data, &items); err != nil {
			return err
		}
		if len(items) == 0 {
			_, err := fmt.Fprintln(e.out, empty)
			return err
		}
		rows := make([][]string, len(items))
		for i, it := range items {
			for _, c := range columns {
				rows[i] = append(rows[i], cell(it[c]))
			}
		}
		return writeTable(e.out, columns, rows)
	}
}

// showObject prints one object as field and value lines: columns first,
// then every other field by name.
func (e *env) showObject(columns []string) func([]byte) error {
	return func(data []byte) error {
		var obj map[string]any
		if err := decode(data, &obj); err != nil {
			return err
		}
		var rest []string
		for k := range obj {
			if !slices.Contains(columns, k) {
				rest = append(rest, k)
			}
		}
		sort.Strings(rest)
		tw := tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
		for _, k := range append(slices.Clone(columns), rest...) {
			if v, ok := obj[k]; ok {
				fmt.Fprintf(tw, "%s\t%s\n", k, cell(v))
			}
		}
		return tw.Flush()
	}
}

// showSummary prints a usage summary as a table with a totals line.
func (e *env) showSummary(data []byte) error {
	var rows []map[string]any
	if err := decode(data, &rows); err != nil {
		return err
	}
	if len(rows) == 0 {
		_, err := fmt.Fprintln(e.out, "No usage in this range.")
		return err
	}
	var sums [5]int64
	var cost money.Money
	table := make([][]string, 0, len(rows)+1)
	for _, r := range rows {
		var line []string
		for _, c := range summaryColumns {
			line = append(line, cell(r[c]))
		}
		table = append(table, line)
		for i, c := range []string{"requests", "errors", "prompt_tokens", "completion_tokens", "total_tokens"} {
			if n, ok := r[c].(json.Number); ok {
				v, _ := n.Int64()
				sums[i] += v
			}
		}
		if n, ok := r["cost"].(json.Number); ok {
			if c, err := money.Parse(n.String()); err == nil {
				cost += c
			}
		}
	}
	total := []string{"total", ""}
	for _, s := range sums {
		total = append(total, fmt.Sprint(s))
	}
	table = append(table, append(total, cost.String()))
	return writeTable(e.out, summaryColumns, table)
}

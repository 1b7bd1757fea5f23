package lookingglass

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"bagpipe/internal/pyjson"
)

// indentStep is the indentation added at each nesting level.
const indentStep = 2

// printer renders a looking-glass document as indented "key: value" lines,
// the layout of the reference tool:
//
//   - object members print as "key: " followed by the value; a nested
//     object or list starts on the next line, indented two more columns;
//   - an object with an "href" is a link: it prints its "id" (if any) and
//     " (...)", then its other members; with recursion enabled, links below
//     the URL of the current document are fetched and printed in place;
//   - list items print as "* item";
//   - an empty object or list prints "-";
//   - a multi-line string starts on the next line and is re-indented;
//   - scalars print as Python prints them (None, True, 1.0...).
type printer struct {
	w       io.Writer
	recurse bool
	// fetch gets the document at url (see Client.fetch).
	fetch func(url string) (status int, doc any, err error)
}

// print prints v, whose key (if any) is already written, and ends at the
// start of a line. atLineStart tells whether the cursor is at the start of
// a line where the first member of an object or list item may go directly;
// base is the URL of the document v comes from. Fetch errors during
// recursion abort the printing and are returned.
func (p *printer) print(v any, indent int, base string, atLineStart bool) error {
	switch v := v.(type) {
	case pyjson.Object:
		return p.printObject(v, indent, base, atLineStart)
	case []any:
		return p.printList(v, indent, base, atLineStart)
	}
	p.printScalar(v, indent)
	return nil
}

func (p *printer) printObject(obj pyjson.Object, indent int, base string, atLineStart bool) error {
	href, isLink := obj.Get("href")
	if isLink {
		if id, ok := obj.Get("id"); ok {
			io.WriteString(p.w, pyStr(id))
			obj = obj.Without("id")
		}
		if url, ok := href.(string); ok && p.recurse && strings.HasPrefix(url, base) {
			return p.expand(url, indent)
		}
		obj = obj.Without("href")
		io.WriteString(p.w, " (...)")
		atLineStart = false
	}
	if len(obj) == 0 {
		if isLink {
			io.WriteString(p.w, "\n")
		} else {
			io.WriteString(p.w, "-\n")
		}
		return nil
	}
	if !atLineStart {
		io.WriteString(p.w, "\n")
	}
	for i, m := range obj {
		if i > 0 || !atLineStart {
			io.WriteString(p.w, strings.Repeat(" ", indent))
		}
		io.WriteString(p.w, m.Key+": ")
		if err := p.print(m.Value, indent+indentStep, base, false); err != nil {
			return err
		}
	}
	return nil
}

// expand fetches the document a link points to and prints it in place.
func (p *printer) expand(url string, indent int) error {
	status, doc, err := p.fetch(url)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		fmt.Fprintf(p.w, " (ERROR %d)\n", status)
		return nil
	}
	return p.print(doc, indent+indentStep, url, false)
}

func (p *printer) printList(list []any, indent int, base string, atLineStart bool) error {
	if len(list) == 0 {
		io.WriteString(p.w, "-\n")
		return nil
	}
	if !atLineStart {
		io.WriteString(p.w, "\n")
	}
	for _, item := range list {
		io.WriteString(p.w, strings.Repeat(" ", indent)+"* ")
		switch item.(type) {
		case pyjson.Object, []any:
			if err := p.print(item, indent+indentStep, base, true); err != nil {
				return err
			}
		default:
			io.WriteString(p.w, pyStr(item)+"\n")
		}
	}
	return nil
}

func (p *printer) printScalar(v any, indent int) {
	text := pyStr(v)
	if s, ok := v.(string); ok && strings.Contains(s, "\n") {
		pad := strings.Repeat(" ", indent)
		text = "\n" + pad + strings.ReplaceAll(strings.Trim(s, "\n"), "\n", "\n"+pad)
	}
	io.WriteString(p.w, text+"\n")
}

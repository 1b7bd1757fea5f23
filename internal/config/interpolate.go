package config

import (
	"fmt"
	"regexp"
	"strings"
)

// templateRef matches the placeholders of Python's string.Template with
// oslo.config's identifier pattern: "$$" (escape), "$name", "${name}",
// or a lone "$" (invalid, kept as is). Names may contain dots:
// "${section.name}" refers to an option of another section.
var templateRef = regexp.MustCompile(`\$(?:(\$)|([_a-zA-Z][._a-zA-Z0-9]*)|\{([_a-zA-Z][._a-zA-Z0-9]*)\}|)`)

// maxExpandDepth bounds nested references, catching reference cycles.
const maxExpandDepth = 32

// refLookup returns the uninterpolated value an option reference stands
// for. section is a section name as written in the reference (or the
// section of the value holding the reference).
type refLookup func(section, option string) (string, bool)

// RefError is returned when an interpolation reference cannot be resolved.
type RefError struct {
	Ref    string // the reference as written, e.g. "$foo" or "${BGP.my_as}"
	Reason string
}

func (e *RefError) Error() string { return fmt.Sprintf("%s: %s", e.Ref, e.Reason) }

// Expand substitutes oslo.config-style references in value, which belongs
// to section: "$name" and "${name}" refer to an option of the same section
// and, failing that, of [DEFAULT]; "${section.name}" (or "$section.name")
// refers to an option of another section; "$$" and "\$" stand for a
// literal dollar. Referenced values are expanded recursively. A reference
// to an option the files do not set is an error (*RefError).
func (f *INI) Expand(section, value string) (string, error) {
	return f.expand(section, value, f.rawLookup, false)
}

// expand implements Expand with a pluggable lookup. When lenient is true,
// references to unknown options are left as written instead of failing
// (reference loops still fail).
func (f *INI) expand(section, value string, lookup refLookup, lenient bool) (string, error) {
	return expandDepth(section, value, lookup, lenient, 0)
}

func expandDepth(section, value string, lookup refLookup, lenient bool, depth int) (string, error) {
	if !strings.Contains(value, "$") {
		return value, nil
	}
	// oslo.config treats "\$" like the template escape "$$".
	value = strings.ReplaceAll(value, `\$`, "$$")
	var b strings.Builder
	last := 0
	for _, m := range templateRef.FindAllStringSubmatchIndex(value, -1) {
		b.WriteString(value[last:m[0]])
		last = m[1]
		whole := value[m[0]:m[1]]
		var name string
		switch {
		case m[2] >= 0: // "$$"
			b.WriteByte('$')
			continue
		case m[4] >= 0:
			name = value[m[4]:m[5]]
		case m[6] >= 0:
			name = value[m[6]:m[7]]
		default: // lone "$"
			b.WriteString(whole)
			continue
		}
		if depth >= maxExpandDepth {
			return "", &RefError{Ref: whole, Reason: "too many nested references (reference loop?)"}
		}
		refSection, raw, ok := resolveRef(section, name, lookup)
		if !ok {
			if lenient {
				b.WriteString(whole)
				continue
			}
			return "", &RefError{Ref: whole, Reason: "no such option"}
		}
		sub, err := expandDepth(refSection, raw, lookup, lenient, depth+1)
		if err != nil {
			return "", err
		}
		b.WriteString(sub)
	}
	b.WriteString(value[last:])
	return b.String(), nil
}

// resolveRef finds what a reference name stands for, the way oslo.config's
// StrSubWrapper does: "a.b" is option b of section a; a bare name is looked
// up in the current section; either falls back to [DEFAULT] with the whole
// name.
func resolveRef(section, name string, lookup refLookup) (refSection, raw string, ok bool) {
	if group, opt, dotted := strings.Cut(name, "."); dotted {
		if raw, ok := lookup(group, opt); ok {
			return group, raw, true
		}
	} else if raw, ok := lookup(section, name); ok {
		return section, raw, true
	}
	if raw, ok := lookup(DefaultSection, name); ok {
		return DefaultSection, raw, true
	}
	return "", "", false
}

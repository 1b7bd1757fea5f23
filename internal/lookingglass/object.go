// Package lookingglass models the read-only tree served under
// /looking-glass: objects made of named entries, rendered to JSON with
// absolute hrefs for the entries that are fetched separately.
package lookingglass

// Kind says how an entry appears in its parent's listing and how a path
// below it is resolved.
type Kind uint8

// Entry kinds (the reference's VALUE, SUBITEM, SUBTREE, DELEGATE, COLLECTION).
const (
	// Value is a constant inlined in the listing.
	Value Kind = iota
	// SubItem is computed and inlined in the listing; a path below it walks
	// into its map keys.
	SubItem
	// SubTree is computed only when its own path is requested; the listing
	// shows {"href": ...}. A path below it walks into its map keys.
	SubTree
	// Delegate is another object; the listing shows {"href": ...}.
	Delegate
	// Collection lists items as [{"id": ..., <fields>, "href": ...}];
	// <collection>/<id> is the item's object.
	Collection
)

// Entry is one named element of an object.
type Entry struct {
	Name string
	Kind Kind
	// Value produces the data of Value, SubItem and SubTree entries. The
	// result must be JSON-encodable (maps, slices, strings, numbers, bools,
	// nil) and may contain Ref values.
	Value func() any
	// Object returns the delegate of a Delegate entry.
	Object func() Object
	// List returns the items of a Collection entry.
	List func() []Item
	// Lookup returns the object of one item of a Collection (false: 404).
	Lookup func(id string) (Object, bool)
}

// Item is one element of a collection listing.
type Item struct {
	ID     string
	Fields map[string]any // extra fields shown beside id and href
}

// Object is a node of the looking glass tree.
type Object interface {
	LookingGlass() []Entry
}

// Ref is a value that renders as {"id": ID, "href": <absolute URL of Path>}
// (Path is relative to the looking glass root, e.g. "bgp/workers/VRF-1").
type Ref struct {
	ID   string
	Path string
}

// Entries is an Object made of a fixed list of entries.
type Entries []Entry

// LookingGlass implements Object.
func (e Entries) LookingGlass() []Entry { return e }

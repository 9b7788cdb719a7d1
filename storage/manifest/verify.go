package manifest

import (
	"encoding/binary"
	"fmt"
)

// The Arrow reader trusts the flatbuffer header of a schema message: it
// sizes slices by the vector lengths it finds there and follows child
// fields recursively, so a few corrupt bytes can ask for gigabytes or loop
// until the stack overflows (neither of which recover catches). checkSchema
// Message walks the parts of a schema message the reader reads, with the
// same unsigned 32-bit offset arithmetic, and refuses lengths that do not
// fit in the buffer and field trees that are too large or cyclic.

// Limits on a schema message's field tree. A manifest has 10 fields, depth 2.
const (
	maxSchemaFields = 256
	maxSchemaDepth  = 8
)

// vtable byte offsets of the fields read, from Arrow's Message.fbs and
// Schema.fbs.
const (
	vtMessageHeaderType = 6
	vtMessageHeader     = 8
	vtSchemaFields      = 6
	vtSchemaMetadata    = 8
	vtSchemaFeatures    = 10
	vtFieldName         = 4
	vtFieldType         = 10
	vtFieldDictionary   = 12
	vtFieldChildren     = 14
	vtFieldMetadata     = 16
	vtDictIndexType     = 6
	vtKeyValueKey       = 4
	vtKeyValueValue     = 6

	headerSchema = 1
)

type fbCheck struct {
	b      []byte
	fields int
}

func (c *fbCheck) u32(pos uint32) (uint32, error) {
	if uint64(pos)+4 > uint64(len(c.b)) {
		return 0, fmt.Errorf("offset %d outside the %d-byte header", pos, len(c.b))
	}
	return binary.LittleEndian.Uint32(c.b[pos:]), nil
}

func (c *fbCheck) u16(pos uint32) (uint16, error) {
	if uint64(pos)+2 > uint64(len(c.b)) {
		return 0, fmt.Errorf("offset %d outside the %d-byte header", pos, len(c.b))
	}
	return binary.LittleEndian.Uint16(c.b[pos:]), nil
}

// slot returns the position of a table's field (0 if absent).
func (c *fbCheck) slot(table uint32, vt uint16) (uint32, error) {
	so, err := c.u32(table)
	if err != nil {
		return 0, err
	}
	vtable := uint32(int32(table) - int32(so))
	size, err := c.u16(vtable)
	if err != nil {
		return 0, err
	}
	if vt >= size {
		return 0, nil
	}
	o, err := c.u16(vtable + uint32(vt))
	if err != nil || o == 0 {
		return 0, err
	}
	return table + uint32(o), nil
}

// ref follows the offset field vt of table (table, string or vector); 0 if
// absent.
func (c *fbCheck) ref(table uint32, vt uint16) (uint32, error) {
	p, err := c.slot(table, vt)
	if err != nil || p == 0 {
		return 0, err
	}
	u, err := c.u32(p)
	if err != nil {
		return 0, err
	}
	return p + u, nil
}

// vector checks the vector field vt of table and returns its element
// positions base, base+elem, ...; n = 0 if absent.
func (c *fbCheck) vector(table uint32, vt uint16, elem uint32) (base, n uint32, err error) {
	v, err := c.ref(table, vt)
	if err != nil || v == 0 {
		return 0, 0, err
	}
	n, err = c.u32(v)
	if err != nil {
		return 0, 0, err
	}
	if uint64(v)+4+uint64(n)*uint64(elem) > uint64(len(c.b)) {
		return 0, 0, fmt.Errorf("vector of %d elements at %d does not fit in the %d-byte header", n, v, len(c.b))
	}
	return v + 4, n, nil
}

// elem follows the table offset stored at vector element position e.
func (c *fbCheck) elem(e uint32) (uint32, error) {
	u, err := c.u32(e)
	return e + u, err
}

func (c *fbCheck) metadata(table uint32, vt uint16) error {
	base, n, err := c.vector(table, vt, 4)
	if err != nil {
		return err
	}
	for i := uint32(0); i < n; i++ {
		kv, err := c.elem(base + 4*i)
		if err != nil {
			return err
		}
		for _, f := range []uint16{vtKeyValueKey, vtKeyValueValue} {
			if _, _, err := c.vector(kv, f, 1); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *fbCheck) field(f uint32, depth int) error {
	c.fields++
	if c.fields > maxSchemaFields || depth > maxSchemaDepth {
		return fmt.Errorf("schema has more than %d fields or nests deeper than %d", maxSchemaFields, maxSchemaDepth)
	}
	if _, _, err := c.vector(f, vtFieldName, 1); err != nil {
		return err
	}
	if _, err := c.ref(f, vtFieldType); err != nil {
		return err
	}
	if d, err := c.ref(f, vtFieldDictionary); err != nil {
		return err
	} else if d != 0 {
		if _, err := c.ref(d, vtDictIndexType); err != nil {
			return err
		}
	}
	if err := c.metadata(f, vtFieldMetadata); err != nil {
		return err
	}
	base, n, err := c.vector(f, vtFieldChildren, 4)
	if err != nil {
		return err
	}
	for i := uint32(0); i < n; i++ {
		ch, err := c.elem(base + 4*i)
		if err != nil {
			return err
		}
		if err := c.field(ch, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// checkMessageHeader checks a message's flatbuffer header before the Arrow
// reader sees it. Only schema messages need it: record batch and dictionary
// headers are read by index against the (already checked) schema.
func checkMessageHeader(b []byte) error {
	c := &fbCheck{b: b}
	root, err := c.u32(0)
	if err != nil {
		return err
	}
	p, err := c.slot(root, vtMessageHeaderType)
	if err != nil || p == 0 {
		return err
	}
	if int(p) >= len(b) {
		return fmt.Errorf("header type outside the header")
	}
	if b[p] != headerSchema {
		return nil
	}
	schema, err := c.ref(root, vtMessageHeader)
	if err != nil {
		return err
	}
	if schema == 0 {
		return fmt.Errorf("schema message without a schema")
	}
	if err := c.metadata(schema, vtSchemaMetadata); err != nil {
		return err
	}
	if _, _, err := c.vector(schema, vtSchemaFeatures, 8); err != nil {
		return err
	}
	base, n, err := c.vector(schema, vtSchemaFields, 4)
	if err != nil {
		return err
	}
	for i := uint32(0); i < n; i++ {
		f, err := c.elem(base + 4*i)
		if err != nil {
			return err
		}
		if err := c.field(f, 0); err != nil {
			return err
		}
	}
	return nil
}

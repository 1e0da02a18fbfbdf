package processor

import "reflect"

// KeyIsNull reports whether the record's key is null: NullKey is set, or
// the key is nil (K is a pointer, slice, map, interface, channel or
// function type and the key is its nil). A nil []byte key is null; an
// empty one is not.
func (r Record[K, V]) KeyIsNull() bool { return r.NullKey || isNil(r.Key) }

// ValueIsNull reports whether the record's value is null: NullValue is
// set, or the value is nil, as for KeyIsNull.
func (r Record[K, V]) ValueIsNull() bool { return r.NullValue || isNil(r.Value) }

// isNil reports whether v is the nil of a type that has one. It does not
// allocate; the common key and value types skip reflection.
func isNil[T any](v T) bool {
	switch p := any(&v).(type) {
	case *string, *int64, *int32, *int, *uint64, *float64, *bool:
		return false
	case *[]byte:
		return *p == nil
	}
	rv := reflect.ValueOf(&v).Elem()
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return rv.IsNil()
	}
	return false
}

package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
)

// decode reads a JSON object of at most limit bytes into v. A content type
// other than JSON, unknown fields, trailing data and wrong types are 4xx
// errors that say what is wrong: the field by its path in the document
// ("restrictions.allowed_ips[2]") and the types by JSON's names ("a
// string", "an array"), never Go's.
func decode(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if err := jsonContentType(r.Header.Get("Content-Type")); err != nil {
		return err
	}
	// Read whole (the limit bounds it) so that a value that does not fit
	// can be found again and named by its path.
	body, err := readBody(http.MaxBytesReader(w, r.Body, limit), r.ContentLength, limit)
	if err != nil {
		return jsonError(err, limit)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return explain(body, reflect.TypeOf(v), err, limit)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return jsonError(err, limit)
		}
		return latchkey.Errorf(latchkey.EMALFORMED, "request body must hold one JSON object and nothing after it")
	}
	return nil
}

// jsonContentType accepts application/json, with no parameter but an
// optional charset=utf-8 (the body is read as UTF-8), and refuses anything
// else with EUNSUPPORTED, a missing Content-Type too. Refusing form and
// text types is what keeps other web sites out: a browser sends those
// across origins without asking (a CORS "simple request"), with any HTTP
// Basic credentials it holds for the API, and a text/plain form can carry
// a body that is valid JSON. application/json needs a preflight, which the
// API never grants.
func jsonContentType(ct string) error {
	const want = "Content-Type must be application/json (optionally with charset=utf-8)"
	if ct == "" {
		return latchkey.Errorf(latchkey.EUNSUPPORTED, "%s; the request has none", want)
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err == nil && mt == "application/json" {
		ok := true
		for k, v := range params {
			ok = ok && k == "charset" && strings.EqualFold(v, "utf-8")
		}
		if ok {
			return nil
		}
	}
	if len(ct) > 100 {
		ct = ct[:100] + "..."
	}
	hint := ""
	if mt == "application/x-www-form-urlencoded" {
		hint = " (what curl -d sends unless told otherwise: add -H 'Content-Type: application/json')"
	}
	return latchkey.Errorf(latchkey.EUNSUPPORTED, "%s, not %q%s", want, ct, hint)
}

// readBody reads r to its end, into a buffer of the announced length when
// there is one: most bodies are far smaller than io.ReadAll's first 512
// bytes, and /v1/verify is called on every request of a protected API.
func readBody(r io.Reader, length, limit int64) ([]byte, error) {
	size := int64(512)
	if length >= 0 && length < limit {
		size = length + 1 // room to read the end without growing
	}
	b := make([]byte, 0, size)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// explain turns a decoding error into one that names the value that does
// not fit t. The JSON is well formed but for a value encoding/json refused:
// a wrong type, an unknown field, a time or a period it could not parse.
// encoding/json names such a value with Go's types and without its place
// in an array, or not at all (an UnmarshalJSON error), so the document is
// walked again against t.
func explain(body []byte, t reflect.Type, err error, limit int64) error {
	var (
		syn *json.SyntaxError
		le  *latchkey.Error
	)
	if errors.As(err, &syn) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return jsonError(err, limit)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if dec.Decode(&doc) == nil {
		if ferr := checkValue(t, doc, ""); ferr != nil {
			return ferr
		}
	}
	if errors.As(err, &le) {
		return le
	}
	return jsonError(err, limit)
}

// jsonError maps what encoding/json and the body reader return, where no
// better account is found.
func jsonError(err error, limit int64) error {
	var (
		syn   *json.SyntaxError
		typ   *json.UnmarshalTypeError
		large *http.MaxBytesError
	)
	switch {
	case errors.As(err, &large):
		return latchkey.Errorf(latchkey.ETOOLARGE, "request body is larger than %d bytes", limit)
	case errors.Is(err, io.EOF):
		return latchkey.Errorf(latchkey.EMALFORMED, "request body is empty; send a JSON object")
	case errors.As(err, &syn):
		return latchkey.Errorf(latchkey.EMALFORMED, "request body is not valid JSON (at byte %d)", syn.Offset)
	case errors.As(err, &typ):
		return latchkey.Errorf(latchkey.EMALFORMED, "%s must be %s, not %s", fieldName(typ.Field), expected(typ.Type), jsonKindName(typ.Value))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return latchkey.Errorf(latchkey.EMALFORMED, "request body ends in the middle of a JSON value")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return latchkey.Errorf(latchkey.EMALFORMED, "unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	var le *latchkey.Error
	if errors.As(err, &le) {
		return le
	}
	return latchkey.Errorf(latchkey.EMALFORMED, "request body could not be read as JSON")
}

// fieldName names a field path for a message; "" is the body itself.
func fieldName(path string) string {
	if path == "" {
		return "request body"
	}
	return path
}

// exampleTime is the RFC 3339 time messages show.
const exampleTime = "2027-01-31T00:00:00Z"

var (
	timeType     = reflect.TypeFor[time.Time]()
	durationType = reflect.TypeFor[latchkey.Duration]()
	// enumTypes are string types that take a fixed set of values.
	enumTypes = map[reflect.Type]string{
		reflect.TypeFor[latchkey.Status](): latchkey.Choices(latchkey.Statuses()),
		reflect.TypeFor[latchkey.Role]():   latchkey.Choices(latchkey.Roles()),
	}
)

// expected says in JSON's words what a value of Go type t must be.
func expected(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case timeType:
		return "an RFC 3339 time string such as " + exampleTime
	case durationType:
		return `a period such as "90d", "36h" or "off"`
	}
	if choices, ok := enumTypes[t]; ok {
		return choices
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "a JSON value"
}

// intRange is the range of an integer type. A uint64's upper end is
// reported as the largest int64: JSON numbers past 2^63 lose precision in
// most clients anyway.
func intRange(t reflect.Type) (lo int64, hi int64) {
	switch t.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if t.Bits() == 64 {
			return 0, math.MaxInt64
		}
		return 0, int64(1)<<t.Bits() - 1
	}
	return -(int64(1) << (t.Bits() - 1)), int64(1)<<(t.Bits()-1) - 1
}

// jsonKind names the JSON type of a value decoded with UseNumber.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "true or false"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return "a JSON value"
}

// jsonKindName turns encoding/json's description of a value ("number",
// "number -5", "string", "bool", "array", "object") into JSON's words.
func jsonKindName(value string) string {
	kind, _, _ := strings.Cut(value, " ")
	switch kind {
	case "string":
		return "a string"
	case "number":
		return "a number"
	case "bool":
		return "true or false"
	case "array":
		return "an array"
	case "object":
		return "an object"
	}
	return "a JSON value"
}

// checkValue checks a decoded JSON value against Go type t as
// encoding/json would decode it, and returns the first value that does not
// fit, named by path. Object keys are checked in sorted order so that the
// answer is the same every time. null fits everything: encoding/json
// leaves the field alone.
func checkValue(t reflect.Type, v any, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v == nil {
		return nil
	}
	mismatch := func() error {
		return latchkey.Errorf(latchkey.EMALFORMED, "%s must be %s, not %s", fieldName(path), expected(t), jsonKind(v))
	}
	switch t {
	case timeType:
		s, ok := v.(string)
		if !ok {
			return mismatch()
		}
		if _, err := time.Parse(time.RFC3339, s); err != nil {
			return latchkey.Errorf(latchkey.EMALFORMED, "%s must be an RFC 3339 time such as %s, not %q", fieldName(path), exampleTime, s)
		}
		return nil
	case durationType:
		s, ok := v.(string)
		if !ok {
			return mismatch()
		}
		_, err := latchkey.ParseDuration(fieldName(path), s)
		return err
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return mismatch()
		}
		fields := jsonFields(t)
		for _, k := range sortedKeys(m) {
			f, ok := findField(fields, k)
			if !ok {
				return latchkey.Errorf(latchkey.EMALFORMED, "unknown field %q (%s has %s)", join(path, k), fieldName(path), fieldList(fields))
			}
			// The path names the field as documented, whatever case
			// the caller wrote its key in.
			if err := checkValue(f.typ, m[k], join(path, f.name)); err != nil {
				return err
			}
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return mismatch()
		}
		for _, k := range sortedKeys(m) {
			if err := checkValue(t.Elem(), m[k], join(path, k)); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		a, ok := v.([]any)
		if !ok {
			return mismatch()
		}
		for i, e := range a {
			if err := checkValue(t.Elem(), e, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			return mismatch()
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return mismatch()
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := v.(json.Number)
		if !ok {
			return mismatch()
		}
		if strings.ContainsAny(string(n), ".eE") {
			return latchkey.Errorf(latchkey.EMALFORMED, "%s must be a whole number, not %s", fieldName(path), n)
		}
		lo, hi := intRange(t)
		if i, err := strconv.ParseInt(string(n), 10, 64); err != nil || i < lo || i > hi {
			return latchkey.Errorf(latchkey.EMALFORMED, "%s must be a whole number from %d to %d, not %s", fieldName(path), lo, hi, n)
		}
	case reflect.Float32, reflect.Float64:
		n, ok := v.(json.Number)
		if !ok {
			return mismatch()
		}
		if _, err := strconv.ParseFloat(string(n), t.Bits()); err != nil {
			limit := fmt.Sprint(math.MaxFloat64)
			if t.Bits() == 32 {
				limit = fmt.Sprint(math.MaxFloat32)
			}
			return latchkey.Errorf(latchkey.EMALFORMED, "%s must be a number no larger than %s, not %s", fieldName(path), limit, n)
		}
	}
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// jsonField is a struct field as encoding/json sees it.
type jsonField struct {
	name string
	typ  reflect.Type
}

// jsonFields lists the fields encoding/json decodes into t: exported
// fields by their tag name, and the fields of embedded structs as if they
// were t's, an outer field hiding an inner one of the same name.
func jsonFields(t reflect.Type) []jsonField {
	var out []jsonField
	seen := map[string]bool{}
	level := []reflect.Type{t}
	for len(level) > 0 {
		var next []reflect.Type
		for _, st := range level {
			for i := range st.NumField() {
				f := st.Field(i)
				tag := f.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, _, _ := strings.Cut(tag, ",")
				ft := f.Type
				for ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if f.Anonymous && name == "" && ft.Kind() == reflect.Struct {
					next = append(next, ft)
					continue
				}
				if !f.IsExported() {
					continue
				}
				if name == "" {
					name = f.Name
				}
				if !seen[name] {
					seen[name] = true
					out = append(out, jsonField{name, f.Type})
				}
			}
		}
		level = next
	}
	return out
}

// findField finds the field a key decodes into: by its exact name, else,
// as encoding/json does, without regard to case.
func findField(fields []jsonField, key string) (jsonField, bool) {
	for _, f := range fields {
		if f.name == key {
			return f, true
		}
	}
	for _, f := range fields {
		if strings.EqualFold(f.name, key) {
			return f, true
		}
	}
	return jsonField{}, false
}

// fieldList names the fields for a message: "name, description and
// restrictions".
func fieldList(fields []jsonField) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	if len(names) == 1 {
		return "only " + names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

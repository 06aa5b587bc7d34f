package llmgateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// adminBodyLimit caps request bodies on admin routes.
const adminBodyLimit = 1 << 20

// writeJSON answers v as JSON with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only our own response types reach here; they always marshal.
		body = []byte(`{"detail":"Internal server error","error":{"message":"Internal server error","type":"server_error","code":"internal_error"}}`)
		status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// readBody reads the whole request body, at most limit bytes, else 413.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	if r.ContentLength > limit {
		return nil, errTooLarge(limit)
	}
	body, err := readAllSized(r.Body, r.ContentLength, limit)
	if errors.Is(err, errOverLimit) {
		return nil, errTooLarge(limit)
	}
	if err != nil {
		return nil, errBadRequest("Could not read request body")
	}
	return body, nil
}

func errTooLarge(limit int64) *apiError {
	return newError(http.StatusRequestEntityTooLarge, "request_too_large",
		fmt.Sprintf("Request body too large (limit %d bytes)", limit))
}

// errOverLimit means a body is longer than the limit it was read with.
var errOverLimit = errors.New("body over the limit")

// readAllSized reads r to its end, at most limit bytes, else errOverLimit.
// A known length is read into one allocation (io.ReadAll grows from 512
// bytes); an unknown one in chunks joined once at the end, so a body costs
// at most twice its size, and one over the limit at most limit bytes.
func readAllSized(r io.Reader, length, limit int64) ([]byte, error) {
	if length < 0 || length > limit {
		return readChunked(r, nil, limit)
	}
	buf := make([]byte, 0, length+1) // +1: room to see EOF without growing
	for {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
		if len(buf) == cap(buf) {
			// Longer than announced: read the rest in chunks.
			return readChunked(r, buf, limit)
		}
	}
}

// readChunked reads the rest of r after first, in chunks of up to 4 MiB.
func readChunked(r io.Reader, first []byte, limit int64) ([]byte, error) {
	chunks := [][]byte{first}
	total := int64(len(first))
	size := int64(64 << 10)
	for {
		if total > limit {
			return nil, errOverLimit
		}
		chunk := make([]byte, min(size, limit+1-total))
		n, err := io.ReadFull(r, chunk)
		chunks = append(chunks, chunk[:n])
		total += int64(n)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		size = min(2*size, 4<<20)
	}
	if total > limit {
		return nil, errOverLimit
	}
	out := make([]byte, 0, total)
	for _, c := range chunks {
		out = append(out, c...)
	}
	return out, nil
}

// decodeAdminBody reads a JSON object from the request into dst strictly:
// malformed JSON, invalid UTF-8, wrong types and unknown fields are 422s
// that name the field. An empty body decodes as {}.
func decodeAdminBody(r *http.Request, dst any) error {
	if err := checkJSONContentType(r); err != nil {
		return err
	}
	body, err := readBody(r, adminBodyLimit)
	if err != nil {
		return err
	}
	return decodeStrict(body, dst)
}

func decodeStrict(body []byte, dst any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		body = []byte("{}")
	}
	if !utf8.Valid(body) {
		return errValidation("Request body is not valid UTF-8")
	}
	if !jsonDepthOK(body, maxJSONDepth) {
		return errValidation(fmt.Sprintf("Request body nests deeper than %d levels", maxJSONDepth))
	}
	if body[0] != '{' {
		return errValidation("Request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return errValidation(describeJSONError(err))
	}
	if dec.More() {
		return errValidation("Invalid JSON body: unexpected data after the object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errValidation("Invalid JSON body: unexpected data after the object")
	}
	return checkFieldNames(body, dst)
}

// checkFieldNames rejects the object keys that are not exactly a field name
// of dst: encoding/json matches names case-insensitively, so it would take
// "USER_ID" for "user_id". body has already decoded into dst.
func checkFieldNames(body []byte, dst any) error {
	names := jsonFieldNames(reflect.TypeOf(dst))
	if names == nil {
		return nil // not a struct: no fixed field names
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // '{'
		return errValidation(describeJSONError(err))
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return errValidation(describeJSONError(err))
		}
		if key, _ := tok.(string); !names[key] {
			return errValidation(fmt.Sprintf("Unknown field '%s'", truncate(key, 64)))
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return errValidation(describeJSONError(err))
		}
	}
	return nil
}

var fieldNameCache sync.Map // reflect.Type → map[string]bool

// jsonFieldNames returns the JSON names of the fields of the struct t points
// to, including those of embedded structs; nil if t is no struct pointer.
func jsonFieldNames(t reflect.Type) map[string]bool {
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil
	}
	if v, ok := fieldNameCache.Load(t); ok {
		return v.(map[string]bool)
	}
	names := map[string]bool{}
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return
		}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			name, _, _ := strings.Cut(tag, ",")
			switch {
			case name == "-":
			case f.Anonymous && name == "":
				walk(f.Type)
			case !f.IsExported():
			case name != "":
				names[name] = true
			default:
				names[f.Name] = true
			}
		}
	}
	walk(t)
	fieldNameCache.Store(t, names)
	return names
}

// describeJSONError turns encoding/json's errors into messages that name
// the field and never echo the input.
func describeJSONError(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return "Request body must be a JSON object"
		}
		return fmt.Sprintf("Field '%s' must be %s", field, describeGoType(typeErr.Type.String()))
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("Invalid JSON body at offset %d", syntaxErr.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return "Invalid JSON body: unexpected end of input"
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return fmt.Sprintf("Unknown field %s", strings.ReplaceAll(name, `"`, "'"))
	}
	var fe *fieldError
	if errors.As(err, &fe) {
		return fe.Error()
	}
	return "Invalid JSON body"
}

// moneyTypeName is how encoding/json names Money in its errors, wherever
// the type is defined.
var moneyTypeName = reflect.TypeFor[storage.Money]().String()

func describeGoType(t string) string {
	t = strings.TrimPrefix(t, "*")
	switch {
	case t == "string":
		return "a string"
	case t == "bool":
		return "a boolean"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "an integer"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case strings.HasPrefix(t, "[]"):
		return "an array"
	case strings.HasPrefix(t, "map"), strings.HasSuffix(t, "jsonObject"):
		return "a JSON object"
	case strings.HasSuffix(t, "apiTime"):
		return "an ISO 8601 date-time"
	case t == moneyTypeName:
		return fmt.Sprintf("a number of US dollars, at most %s", storage.MaxMoney)
	}
	return "of a different type"
}

// fieldError is a validation failure raised while decoding a custom type.
type fieldError struct{ msg string }

func (e *fieldError) Error() string { return e.msg }

// jsonObject is a JSON value that must be an object (metadata). It keeps the
// client's bytes verbatim.
type jsonObject json.RawMessage

// UnmarshalJSON accepts an object or null.
func (o *jsonObject) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*o = nil
		return nil
	}
	if len(b) == 0 || b[0] != '{' {
		return &json.UnmarshalTypeError{Value: "value", Type: jsonObjectType}
	}
	*o = append((*o)[:0], b...)
	return nil
}

// pagination reads skip (≥ 0, default 0) and limit (1..1000, default 100).
func pagination(r *http.Request) (skip, limit int, err error) {
	q := r.URL.Query()
	skip, limit = 0, 100
	if v, ok := q["skip"]; ok {
		n, convErr := strconv.Atoi(v[0])
		if convErr != nil || n < 0 {
			return 0, 0, errValidation("Query parameter 'skip' must be an integer >= 0")
		}
		skip = n
	}
	if v, ok := q["limit"]; ok {
		n, convErr := strconv.Atoi(v[0])
		if convErr != nil || n < 1 || n > 1000 {
			return 0, 0, errValidation("Query parameter 'limit' must be an integer between 1 and 1000")
		}
		limit = n
	}
	return skip, limit, nil
}

// writePage answers a paginated list: list reads the page the request's
// skip and limit name, and shape gives each item its response shape.
func writePage[T, R any](w http.ResponseWriter, r *http.Request, list func(skip, limit int) ([]T, error), shape func(*T) (R, error)) error {
	skip, limit, err := pagination(r)
	if err != nil {
		return err
	}
	items, err := list(skip, limit)
	if err != nil {
		return err
	}
	out := make([]R, len(items))
	for i := range items {
		if out[i], err = shape(&items[i]); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

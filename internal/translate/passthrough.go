package translate

import (
	"fmt"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// NewPassThrough is the translator of a call whose client and provider
// speak the same API: the request has its model patched (and, for a
// stream that can carry one, the usage chunk asked for), answers are
// forwarded as they are while their usage is read.
func NewPassThrough(o Options) Translator { return &passThrough{opts: o} }

type passThrough struct {
	opts       Options
	stripUsage bool // the client asked for no usage chunk: the one forced is dropped
}

func (t *passThrough) Request(body []byte) ([]byte, string, error) {
	patched, strip, err := patchRequest(body, t.opts.Model, t.opts.ForceUsage)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrInvalidBody, err)
	}
	t.stripUsage = strip
	return patched, "", nil
}

// patchRequest returns body with "model" set to model and, when
// forceUsage, stream_options.include_usage set to true, editing the JSON
// in place so that everything else (unknown fields, key order, number
// precision) stays as the client sent it. stripUsage reports that the
// client itself asked for include_usage false.
func patchRequest(body []byte, model string, forceUsage bool) (patched []byte, stripUsage bool, err error) {
	patched, err = sjson.SetBytes(body, "model", model)
	if err != nil || !forceUsage {
		return patched, false, err
	}
	opts := gjson.GetBytes(body, "stream_options")
	if opts.IsObject() {
		stripUsage = opts.Get("include_usage").Type == gjson.False
		patched, err = sjson.SetBytes(patched, "stream_options.include_usage", true)
	} else {
		patched, err = sjson.SetRawBytes(patched, "stream_options", []byte(`{"include_usage":true}`))
	}
	return patched, stripUsage, err
}

func (t *passThrough) Response(body []byte) (Response, error) {
	r := Response{Body: body}
	if u := gjson.GetBytes(body, "usage"); u.IsObject() {
		r.Usage = parseUsage(u)
		return r, nil
	}
	for _, path := range [...]string{"choices.#.message.content", "choices.#.text"} {
		gjson.GetBytes(body, path).ForEach(func(_, v gjson.Result) bool {
			r.ContentBytes += len(v.Str)
			return true
		})
	}
	if r.ContentBytes == 0 {
		// Not a chat completion (a Responses object, say): count half
		// the body as generated text rather than nothing.
		r.ContentBytes = len(body) / 2
	}
	return r, nil
}

func (t *passThrough) StreamHeader(status int, contentType string) (int, string) {
	return status, contentType
}

func (t *passThrough) Stream() Stream { return &passThroughStream{strip: t.stripUsage} }

// passThroughStream forwards every piece unchanged while its scanner picks
// out usage, except the usage-only chunk the gateway asked for when the
// client did not want it. It never holds more than one line.
type passThroughStream struct {
	scan      sseScanner
	strip     bool
	skipBlank bool // the blank line after a dropped chunk goes too
}

func (s *passThroughStream) Feed(p Piece) ([]byte, bool, error) {
	switch {
	case !p.Whole():
		return p.Data, false, nil // part of a long line: forwarded unread
	case p.Blank():
		if s.skipBlank {
			s.skipBlank = false
			return nil, false, nil
		}
		return p.Data, false, nil
	}
	if s.scan.line(p.Data) && s.strip {
		s.skipBlank = true
		return nil, s.scan.done, nil
	}
	return p.Data, s.scan.done, nil
}

func (s *passThroughStream) Finish() ([]byte, error) { return nil, nil }

func (s *passThroughStream) Usage() (Usage, int) { return s.scan.usage, s.scan.contentBytes }

// Interface guards
var (
	_ Translator = (*passThrough)(nil)
	_ Stream     = (*passThroughStream)(nil)
)

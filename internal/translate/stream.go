package translate

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
)

// streamTranslator converts one upstream SSE stream into the client's SSE
// dialect.
type streamTranslator interface {
	// event consumes one upstream SSE event: its "event:" name (may be empty) and its joined "data:" payload,
	// and appends complete translated SSE events (each ending in "\n\n") to out.
	event(name string, data []byte, out []byte) ([]byte, error)
	// finish appends what closes the client's stream once the upstream stream ended normally
	// (for chat: a final usage chunk if includeUsage and "data: [DONE]\n\n"; for Anthropic: message_delta/message_stop if not yet sent).
	finish(out []byte) []byte
	// usage reports the usage seen so far.
	usage() Usage
	// contentBytes is the number of bytes of generated text/tool arguments seen (for estimates when no usage arrives).
	contentBytes() int
}

var chatStreamDone = []byte("[DONE]")

// translatedSSE accumulates translated events and remembers the first encoding
// error, so that the translators need not check every append.
type translatedSSE struct {
	buf []byte
	err error
}

// write appends v as an SSE event: with an "event:" line when name is set
// (the Anthropic dialect), as a bare "data:" line otherwise (chat).
func (w *translatedSSE) write(name string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		if w.err == nil {
			w.err = fmt.Errorf("encoding %s event: %w", cmp.Or(name, "chunk"), err)
		}
		return
	}
	if name != "" {
		w.buf = append(w.buf, "event: "...)
		w.buf = append(w.buf, name...)
		w.buf = append(w.buf, '\n')
	}
	w.buf = append(w.buf, "data: "...)
	w.buf = append(w.buf, b...)
	w.buf = append(w.buf, "\n\n"...)
}

// translatedStream drives a streamTranslator from the pieces of the
// provider's stream: they are joined into events, each translated as soon
// as it is whole.
type translatedStream struct {
	events eventAssembler
	tr     streamTranslator
	out    []byte // reused for every event's output
}

func (s *translatedStream) Feed(p Piece) ([]byte, bool, error) {
	name, data, ok, err := s.events.feed(p)
	if err != nil || !ok {
		return nil, false, err
	}
	return s.event(name, data)
}

func (s *translatedStream) event(name string, data []byte) ([]byte, bool, error) {
	out, err := s.tr.event(name, data, s.out[:0])
	if err != nil {
		return nil, false, err
	}
	s.out = out
	return out, name == "message_stop" || bytes.Equal(data, chatStreamDone), nil
}

func (s *translatedStream) Finish() ([]byte, error) {
	out := s.out[:0]
	if name, data, ok := s.events.pending(); ok {
		var err error
		if out, _, err = s.event(name, data); err != nil {
			return nil, err
		}
	}
	s.out = s.tr.finish(out)
	return s.out, nil
}

func (s *translatedStream) Usage() (Usage, int) { return s.tr.usage(), s.tr.contentBytes() }

// translatedStreamHeader is how a translated stream is answered: a new
// event stream, whatever the provider's said of itself.
func translatedStreamHeader() (int, string) { return 200, "text/event-stream" }

// translatedResponse is a translated non-stream answer; without usage half
// of it counts as generated text.
func translatedResponse(body []byte, u Usage) Response {
	r := Response{Body: body, ContentType: "application/json", Usage: u}
	if !u.Seen {
		r.ContentBytes = len(body) / 2
	}
	return r
}

// Interface guards
var (
	_ Stream           = (*translatedStream)(nil)
	_ streamTranslator = (*chatFromAnthropicStream)(nil)
	_ streamTranslator = (*anthropicFromChatStream)(nil)
)

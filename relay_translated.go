package llmgateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// maxEventBytes bounds one SSE event read from a provider whose stream is
// translated (the event must be whole to be translated).
const maxEventBytes = 4 << 20

// relayTranslatedStream forwards a provider's stream in the client's
// format: each upstream event is translated and flushed as it arrives. The
// usage record is committed before the client sees the stream's end.
func (g *Gateway) relayTranslatedStream(ctx context.Context, w http.ResponseWriter, c *call, resp *http.Response, a *attempt) error {
	var tr streamTranslator
	if c.translate == chatToMessages {
		tr = newChatFromAnthropicStream(c.clientModel, time.Now().Unix(), !c.stripUsage)
	} else {
		tr = newAnthropicFromChatStream(c.clientModel, c.prompt)
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	h.Del("Content-Length")
	a.statusCode = http.StatusOK
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()

	recorded := false
	recordOnce := func() {
		if recorded {
			return
		}
		recorded = true
		u := tr.usage()
		a.usageSeen, a.promptTokens, a.completionTokens = u.seen, u.prompt, u.completion
		a.usageInvalid = u.invalid
		a.completionBytes = tr.contentBytes()
		if err := g.record(c, a, false); err != nil {
			g.logger.Error("recording stream usage", zap.String("request_id", c.requestID), zap.Error(err))
		}
	}
	firstWrite := true
	send := func(out []byte) bool {
		if len(out) == 0 {
			return true
		}
		if firstWrite {
			firstWrite = false
			gatewayMetrics.firstToken.WithLabelValues(c.up.name).Observe(time.Since(a.start).Seconds())
		}
		if _, err := w.Write(out); err != nil {
			return false
		}
		return rc.Flush() == nil
	}

	events := newSSEReader(resp.Body)
	out := make([]byte, 0, 1024)
	for {
		name, data, err := events.next()
		if errors.Is(err, io.EOF) {
			recordOnce()
			if !send(tr.finish(out[:0])) {
				a.failed, a.errorMessage = true, "client disconnected"
			}
			break
		}
		if err == nil {
			out, err = tr.event(name, data, out[:0])
			if err == nil {
				if name == "message_stop" || bytes.Equal(data, chatStreamDone) {
					recordOnce() // before the client sees the end
				}
				if !send(out) {
					a.failed, a.errorMessage = true, "client disconnected"
					break
				}
				continue
			}
		}
		if ctx.Err() != nil && !isTimeout(ctx.Err()) && !cutByShutdown(ctx) {
			a.failed, a.errorMessage = true, "client disconnected"
			break
		}
		// The provider failed after the stream started, reported an error
		// event, or the gateway stops: the client gets the error event.
		if cutByShutdown(ctx) {
			a.failed, a.errorMessage = true, msgCutByShutdown
		} else {
			_, cause := g.upstreamFailure(c, err)
			a.failed, a.errorMessage = true, "stream interrupted: "+cause
		}
		recordOnce()
		send(c.streamErrorEvent())
		break
	}
	recordOnce()
	return nil
}

// sseReader splits a stream into events: the "event:" name and the joined
// "data:" lines, up to a blank line. Comments and other fields are skipped.
type sseReader struct {
	br   *bufio.Reader
	line []byte
	data []byte
}

func newSSEReader(r io.Reader) *sseReader {
	return &sseReader{br: bufio.NewReaderSize(r, sseBufferSize)}
}

// next returns the next event, io.EOF at a clean end of the stream, or the
// read error. The data is valid until the next call.
func (s *sseReader) next() (name string, data []byte, err error) {
	s.data = s.data[:0]
	haveData := false
	for {
		line, err := s.readLine()
		if err != nil {
			if errors.Is(err, io.EOF) && haveData {
				return name, s.data, nil // a last event without its blank line
			}
			return "", nil, err
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0:
			if haveData {
				return name, s.data, nil
			}
			name = ""
		case line[0] == ':':
		case bytes.HasPrefix(line, []byte("event:")):
			name = string(bytes.TrimSpace(line[len("event:"):]))
		case bytes.HasPrefix(line, dataPrefix):
			v := line[len(dataPrefix):]
			if len(v) > 0 && v[0] == ' ' {
				v = v[1:]
			}
			if haveData {
				s.data = append(s.data, '\n')
			}
			s.data = append(s.data, v...)
			haveData = true
			if len(s.data) > maxEventBytes {
				return "", nil, fmt.Errorf("stream event over %d bytes", maxEventBytes)
			}
		}
	}
}

// readLine reads one whole line, however long, up to maxEventBytes.
func (s *sseReader) readLine() ([]byte, error) {
	s.line = s.line[:0]
	for {
		chunk, err := s.br.ReadSlice('\n')
		s.line = append(s.line, chunk...)
		if len(s.line) > maxEventBytes {
			return nil, fmt.Errorf("stream line over %d bytes", maxEventBytes)
		}
		switch {
		case err == nil:
			return s.line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(s.line) > 0:
			return s.line, nil
		default:
			return nil, err
		}
	}
}

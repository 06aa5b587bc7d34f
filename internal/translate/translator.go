package translate

import (
	"errors"
	"time"
)

// Translator is how one call's bodies change between the API its client
// speaks and the one its provider speaks. A call holds one from its
// preparation on; pass-through (both speak the same API) is one of them.
// Translators are pure: bodies in, bodies out. Request is called once,
// first: what it reads of the client's body (whether the client wants a
// usage chunk, say) shapes the answers.
type Translator interface {
	// Request turns the client's request body (valid JSON, an object) into
	// what the provider receives, and names the provider's path below its
	// base URL ("" for the client's own path). An error wrapping
	// ErrInvalidBody means the body could not be edited at all; any other
	// error is a request the provider's API cannot express.
	Request(body []byte) (provider []byte, path string, err error)
	// Response turns a provider's whole non-stream answer (valid JSON) into
	// the client's, with the usage it reports.
	Response(body []byte) (Response, error)
	// Stream starts the state machine of a stream answer.
	Stream() Stream
	// StreamHeader returns the status and Content-Type the client's stream
	// is answered with, given the provider's.
	StreamHeader(status int, contentType string) (int, string)
}

// Response is a provider's non-stream answer in the client's format.
type Response struct {
	Body        []byte
	ContentType string // "" keeps the provider's
	Usage       Usage
	// ContentBytes counts the generated text, for an estimate when the
	// provider reported no usage.
	ContentBytes int
}

// Stream is the state machine of one stream answer: fed the provider's
// stream piece by piece as a Reader splits it, it says what the client
// receives and what the provider reported.
type Stream interface {
	// Feed consumes one piece and returns what the client receives for it
	// now (nil for nothing yet; valid until the next call). final reports
	// the provider's last event (its usage is complete: bill before the
	// client sees it). An error is a provider's error event or an event
	// that cannot be translated: the stream ends there.
	Feed(p Piece) (out []byte, final bool, err error)
	// Finish returns what closes the client's stream once the provider's
	// ended without an error.
	Finish() ([]byte, error)
	// Usage reports the usage seen so far and the bytes of generated
	// content forwarded (for an estimate when no usage arrives).
	Usage() (u Usage, contentBytes int)
}

// Options are what a translator needs to know of its call.
type Options struct {
	Model       string // the provider's own model name, sent to it
	ClientModel string // the model as the client named it, reported back
	// ForceUsage asks an OpenAI-compatible provider for the usage chunk
	// of a stream (stream_options.include_usage).
	ForceUsage bool
	// DefaultMaxTokens fills the max_tokens Anthropic requires when the
	// client set none.
	DefaultMaxTokens int64
	// MaxCompletionTokens sends max_completion_tokens instead of
	// max_tokens (OpenAI's reasoning models accept only that name).
	MaxCompletionTokens bool
	// PromptEstimate is the prompt's estimated size, stated where a client
	// reads input tokens before the provider has reported them.
	PromptEstimate int64
	// Now stamps the objects a translation creates (chat's "created").
	Now func() time.Time
}

func (o Options) created() int64 {
	if o.Now == nil {
		return time.Now().Unix()
	}
	return o.Now().Unix()
}

// Constructor makes the translator of one call.
type Constructor func(Options) Translator

// ErrInvalidBody is a request body that could not be edited.
var ErrInvalidBody = errors.New("invalid JSON body")

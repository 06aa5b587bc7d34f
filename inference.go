package llmgateway

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/tidwall/gjson"

	"github.com/llmgateway/caddy-llm-gateway/internal/metering"
	"github.com/llmgateway/caddy-llm-gateway/internal/routing"
	"github.com/llmgateway/caddy-llm-gateway/internal/translate"
	"github.com/llmgateway/caddy-llm-gateway/storage"
)

// endpoint is an inference route and how it is metered.
type endpoint struct {
	path string // below the provider's base URL, and below /v1
	kind endpointKind
}

// endpointKind says which API an endpoint speaks.
type endpointKind int

const (
	kindChat endpointKind = iota
	kindEmbeddings
	kindResponses
	kindMessages    // Anthropic Messages
	kindCompletions // the legacy (text) Completions API
)

// apiName names the API of an endpoint kind in refusals.
func (k endpointKind) apiName() string {
	switch k {
	case kindChat:
		return "chat completions"
	case kindEmbeddings:
		return "embeddings"
	case kindResponses:
		return "the Responses API"
	case kindMessages:
		return "the Messages API"
	default:
		return "the legacy Completions API"
	}
}

var (
	endpointChat        = endpoint{path: "/chat/completions", kind: kindChat}
	endpointEmbeddings  = endpoint{path: "/embeddings", kind: kindEmbeddings}
	endpointResponses   = endpoint{path: "/responses", kind: kindResponses}
	endpointMessages    = endpoint{path: "/messages", kind: kindMessages}
	endpointCompletions = endpoint{path: "/completions", kind: kindCompletions}
)

// translators chooses how a call's bodies change, by the API its client
// speaks and the format its provider speaks. A pairing not listed passes
// through where the provider serves the client's API itself (see
// upstream.serves) and is refused otherwise. A new provider format or
// client API is one line here.
var translators = map[translationKey]translate.Constructor{
	{kindChat, formatAnthropic}:  translate.NewOpenAIToAnthropic,
	{kindMessages, formatOpenAI}: translate.NewAnthropicToOpenAI,
}

type translationKey struct {
	client   endpointKind
	provider apiFormat
}

// call is one validated inference request, ready to forward.
type call struct {
	endpoint      endpoint
	requestID     string
	userID        string
	keyID         string // empty for the master key
	endUser       string // the caller's own end-user id (virtual keys only)
	up            *upstream
	provider      string
	model         string                // the provider's own name
	body          []byte                // as sent, with model (and stream_options) patched, or translated
	upstreamPath  string                // below the provider's base URL
	upstreamQuery string                // the client's query, passed to Anthropic-format providers
	newTranslator translate.Constructor // chosen by the pairing (translators)
	tr            translate.Translator
	dialect       translate.Dialect // of the client's errors, chosen by its route
	clientModel   string            // the model as the client named it
	stream        bool
	prompt        int64 // estimated prompt tokens, billed when the provider reports none
	// promptBound and completionBound are the most tokens an honest
	// provider can bill for the request: what its reservation holds.
	promptBound     int64
	completionBound int64
	hold            *metering.Hold // budget and rate limits held until the call settles
	price           *storage.Price // at admission; it bills the call (nil: unpriced)
	// meterBudgets and meterRates back the meter's request, so that
	// admission allocates nothing for them.
	meterBudgets [2]metering.Budget
	meterRates   [2]metering.Rate

	// Of a call to a route (nil route: the client named provider:model):
	// its targets, the client's body each target's request is built from,
	// and for the target being tried, the outcomes that move on to the
	// next and how long its response may take to start.
	route          *routeCall
	clientBody     []byte
	failover       routing.Failover
	attemptTimeout time.Duration
}

// prepareCall authenticates and validates an inference request and patches
// its body for the provider, in the contract's order of checks.
func (g *Gateway) prepareCall(w http.ResponseWriter, r *http.Request, ep endpoint) (*call, error) {
	p, err := g.authenticate(r)
	if err != nil {
		return nil, err
	}
	if !g.state.health.writable(g.state.store, g.now()) {
		// The last write failed: a call now could not be billed.
		return nil, errStoreUnavailable
	}
	if err := checkJSONContentType(r); err != nil {
		return nil, err
	}
	body, err := readBody(r, g.MaxRequestBody)
	if err != nil {
		return nil, err
	}
	root, err := parseRequestJSON(body)
	if err != nil {
		return nil, err
	}
	if !root.IsObject() {
		return nil, errValidation("Request body must be a JSON object")
	}
	modelField := root.Get("model")
	switch {
	case !modelField.Exists():
		return nil, errValidation("Field 'model' is required")
	case modelField.Type != gjson.String:
		return nil, errValidation("Field 'model' must be a string")
	}
	// A lenient provider reads "true" or 1 as true: the gateway must read
	// these switches as the provider would, so anything but a boolean is
	// refused rather than taken as false.
	for _, field := range [...]string{"stream", "background"} {
		if v := root.Get(field); v.Exists() && v.Type != gjson.True && v.Type != gjson.False && v.Type != gjson.Null {
			return nil, errValidation(fmt.Sprintf("Field '%s' must be a boolean", field))
		}
	}
	if ep.kind == kindChat {
		if err := validateChatMessages(root); err != nil {
			return nil, err
		}
	}

	c := &call{endpoint: ep, requestID: w.Header().Get("X-Request-Id"), upstreamPath: ep.path, clientModel: modelField.Str, dialect: clientDialect(r)}
	userField, userName := root.Get("user"), "user"
	if ep.kind == kindMessages {
		userField, userName = root.Get("metadata.user_id"), "metadata.user_id"
	}
	if err := g.resolveUser(p, userField, userName, c); err != nil {
		return nil, err
	}
	user, err := g.loadCallUser(c.userID)
	if err != nil {
		return nil, err
	}

	provider, model, ok := splitModel(modelField.Str)
	if rt := g.routes[modelField.Str]; !ok && rt != nil {
		if err := g.prepareRoute(c, rt, root, body); err != nil {
			return nil, err
		}
	} else if err := g.prepareTarget(c, root, body, provider, model, ok); err != nil {
		return nil, err
	}

	if err := g.admitCall(r.Context(), w, c, p.key, user); err != nil {
		return nil, err
	}
	if p.key != nil && !c.allowedFor(p.key.AllowedModels) {
		g.release(c)
		return nil, errForbidden("model_not_allowed", fmt.Sprintf("Model '%s' is not allowed for this API key", truncate(modelField.Str, 128)))
	}

	c.stream = ep.kind != kindEmbeddings && root.Get("stream").Type == gjson.True
	if c.route != nil {
		// Each target's request is built when it is tried.
		c.clientBody = body
		return c, nil
	}
	if err := g.buildUpstreamBody(c, body); err != nil {
		g.release(c)
		return nil, err
	}
	return c, nil
}

// prepareTarget readies a call to the provider:model the client named.
func (g *Gateway) prepareTarget(c *call, root gjson.Result, body []byte, provider, model string, ok bool) error {
	if !ok {
		return errBadRequest(fmt.Sprintf("Model '%s' must be 'provider:model'", truncate(c.clientModel, 128)))
	}
	up := g.upstreams[provider]
	if up == nil {
		return errBadRequest(fmt.Sprintf("Provider '%s' is not configured", truncate(provider, 64)))
	}
	ep := c.endpoint
	c.newTranslator = translatorFor(ep.kind, up)
	if c.newTranslator == nil {
		return errBadRequest(fmt.Sprintf("Provider '%s' does not support %s", provider, ep.kind.apiName()))
	}
	if err := refuseBackground(ep, root); err != nil {
		return err
	}
	c.up, c.provider, c.model = up, provider, model
	c.prompt = translate.EstimatePromptTokens(body)
	c.promptBound = translate.PromptTokenBound(root, body)
	c.completionBound = completionBound(root, ep.kind, up.format, g.DefaultMaxTokens)
	return nil
}

// translatorFor returns how a call of kind to up is translated, or nil
// when up cannot serve it.
func translatorFor(kind endpointKind, up *upstream) translate.Constructor {
	if tr := translators[translationKey{kind, up.format}]; tr != nil {
		return tr
	}
	if up.serves(kind) {
		return translate.NewPassThrough
	}
	return nil
}

// refuseBackground refuses a background Responses request.
func refuseBackground(ep endpoint, root gjson.Result) error {
	if ep.kind == kindResponses && root.Get("background").Type == gjson.True {
		// The provider would answer a queued object and do the work later,
		// out of the gateway's sight: it could not be metered.
		return errBadRequest("Background responses are not supported: the gateway cannot meter work done after the response; send 'background': false")
	}
	return nil
}

// allowedFor reports whether a key's allow-list lets it make the call: a
// route by its name, a provider:model by itself or its provider's `*`.
func (c *call) allowedFor(allowed []string) bool {
	if c.route != nil {
		return routeAllowed(allowed, c.route.route.name)
	}
	return modelAllowed(allowed, c.provider, c.model)
}

// buildUpstreamBody prepares what the provider receives with the call's
// translator: the client's body with the model patched when both speak the
// same API, else a translation.
func (g *Gateway) buildUpstreamBody(c *call, body []byte) error {
	c.tr = c.newTranslator(translate.Options{
		Model:               c.model,
		ClientModel:         c.clientModel,
		ForceUsage:          c.stream && (c.endpoint.kind == kindChat || c.endpoint.kind == kindCompletions),
		DefaultMaxTokens:    int64(g.DefaultMaxTokens),
		MaxCompletionTokens: c.up.maxCompletionTokens,
		PromptEstimate:      c.prompt,
	})
	out, path, err := c.tr.Request(body)
	switch {
	case errors.Is(err, translate.ErrInvalidBody):
		return errValidation("Invalid JSON body")
	case err != nil:
		return errBadRequest(fmt.Sprintf("Request cannot be sent to provider '%s': %s", c.provider, truncate(err.Error(), 256)))
	}
	c.body = out
	if path != "" {
		c.upstreamPath = path
	}
	return nil
}

// resolveUser decides whom the request bills: the user named in the body
// for the master key, the key's own user for a virtual key. With a virtual
// key the body's user is the caller's own end-user id (as in the OpenAI
// API): it is recorded, forwarded unchanged, and bills no one else.
func (g *Gateway) resolveUser(p principal, user gjson.Result, field string, c *call) error {
	if user.Exists() && user.Type != gjson.String && user.Type != gjson.Null {
		return errValidation(fmt.Sprintf("Field '%s' must be a string", field))
	}
	if p.master {
		if user.Type != gjson.String || user.Str == "" {
			if field == "user" {
				return errBadRequest("When using master key, 'user' field is required in request body")
			}
			return errBadRequest(fmt.Sprintf("When using master key, '%s' is required in request body", field))
		}
		c.userID = user.Str
		return nil
	}
	c.keyID = p.key.ID
	c.userID = p.key.UserID
	if user.Type == gjson.String {
		c.endUser = truncateRunes(user.Str, maxEndUserLength)
	}
	return nil
}

// maxEndUserLength is how many characters of an end-user id are recorded.
const maxEndUserLength = 256

// loadCallUser returns the billed user if it exists, is not deleted and is
// not blocked.
func (g *Gateway) loadCallUser(id string) (*storage.User, error) {
	u, err := cached(g.state.cache.users, id, func() (*storage.User, error) { return g.store().GetUser(id) })
	if err != nil {
		return nil, err
	}
	if u == nil || u.Deleted() {
		return nil, errNotFound(fmt.Sprintf("User '%s' not found", truncate(id, 128)))
	}
	if u.Blocked {
		return nil, errForbidden("user_blocked", fmt.Sprintf("User '%s' is blocked", id))
	}
	return u, nil
}

// modelAllowed checks a key's allow-list: empty allows everything;
// entries are "provider:model" or "provider:*".
func modelAllowed(allowed []string, provider, model string) bool {
	if len(allowed) == 0 {
		return true
	}
	for _, a := range allowed {
		p, m, ok := splitModel(a)
		if ok && p == provider && (m == "*" || m == model) {
			return true
		}
	}
	return false
}

func (g *Gateway) serveCompletion(w http.ResponseWriter, r *http.Request, ep endpoint) error {
	c, err := g.prepareCall(w, r, ep)
	if err != nil {
		return err
	}
	defer g.release(c) // a call that ends without a record frees its budget
	if c.route != nil {
		return g.forwardRoute(w, r, c)
	}
	if c.endpoint.kind == kindMessages && c.up.format == formatAnthropic {
		// Anthropic's own flags (Claude Code sends ?beta=true).
		c.upstreamQuery = r.URL.RawQuery
	}
	_, err = g.forward(w, r, c)
	return err
}

// Package translate turns one call's bodies between the API its client
// speaks and the one its provider speaks: OpenAI Chat Completions to and
// from Anthropic Messages, so that either kind of client can reach either
// kind of provider, and pass-through (the same API on both sides, where
// only the model is patched and usage is read). A call holds one
// Translator; its Stream is the state machine the gateway's one relay loop
// drives. It also holds the SSE reader, the one usage parser, the token
// estimates and the error shapes of each client dialect.
//
// Everything here is pure: bodies in, bodies out, no I/O beyond reading a
// stream it is given.
//
// Fields with no counterpart on the other side are dropped rather than
// rejected, because clients send them by default and failing the request
// would break them. reasoning_effort and Anthropic's output_config.effort
// map onto each other; role "system" messages inside an Anthropic request
// become chat system messages where they stand.
//
// Dropped from a chat request bound for Anthropic: frequency_penalty,
// presence_penalty, logit_bias, logprobs, top_logprobs, seed,
// response_format, verbosity, service_tier, store, metadata, modalities,
// audio, prediction, web_search_options, prompt_cache_key,
// safety_identifier, stream_options (the translator reads include_usage
// itself), the legacy functions/function_call, a message's "name", an
// image's "detail" and a tool's "strict". Dropped from an Anthropic request
// bound for an OpenAI-compatible provider: top_k (OpenAI rejects it),
// thinking, context_management, the rest of output_config, service_tier,
// container, mcp_servers, every cache_control, a tool's defer_loading, a
// tool_choice type it does not know, citations, a tool_result's is_error,
// the anthropic-beta header, and the assistant's thinking and
// redacted_thinking blocks (only Anthropic can verify their signatures).
// Content that cannot be carried over (audio, file ids, server tools) is an
// error instead: dropping it would change what the model sees.
package translate

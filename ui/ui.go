// Package ui holds the dashboard's templates and static assets, embedded
// in the binary as the browser runs them: no build step, no network.
// The handlers that render them are in the root package (dashboard*.go).
package ui

import "embed"

// Files holds templates/*.html (html/template sources) and assets/*
// (served under /ui/assets/).
//
//go:embed templates/*.html assets/*
var Files embed.FS

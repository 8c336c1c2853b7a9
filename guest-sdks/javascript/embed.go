// Package javascriptsdk holds the hwe module of JavaScript steps (hwe.js,
// the one copy): the JavaScript runner's workers load it so that
// require('hwe') works inside a step.
package javascriptsdk

import _ "embed"

// Module is the source of hwe.js, a CommonJS module.
//
//go:embed hwe.js
var Module string

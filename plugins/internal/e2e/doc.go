// Package e2e holds end-to-end tests of the python, node and shell runners:
// the example workflows in workflows/ and the fixtures in testdata/runners/
// are loaded by host/workflow and run by host/engine with the real runners.
// It has no code of its own.
package e2e

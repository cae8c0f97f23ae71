// Package interop holds the interoperability tests between phase-shim, its
// Phase API emulator (fetch/phasetest) and the official Phase Node SDK
// (@phase.dev/phase-node, pinned in package-lock.json). It has no code of
// its own; see interop_test.go.
package interop

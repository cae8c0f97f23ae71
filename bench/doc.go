// Package bench holds phase-shim's benchmarks: the Go benchmarks of the
// steps between reading secrets and exec (decryption, dotenv parsing, name
// policy, envp), the X25519 rate that bounds decryption, and the programs
// bench/run drives (emulator, binsize). See BENCHMARKS.md.
package bench

// Package deliver hands secrets to the command as files instead of (or as
// well as) environment variables.
//
// Two uses: apps that read secrets from files (the Phase ECS guide
// recommends it), and values the environment cannot carry at all — a value
// holding a NUL byte, or one over the kernel's 131072-byte limit per
// KEY=VALUE string (a certificate chain, a large JSON document).
//
// --file KEY (Plan, then Delivery.Write) moves each matched key out of the
// environment: the value goes to DIR/KEY and the variable KEY_FILE=DIR/KEY
// takes its place. --write-file PATH (WriteAll) writes the whole set into one
// file in one of the format package's formats.
//
// Every file is written the same way: the directory is opened once with
// O_DIRECTORY|O_NOFOLLOW and everything after that happens relative to that
// descriptor, so swapping the directory path for a symlink half-way cannot
// redirect a write. Each file is created under a fresh temporary name with
// O_CREAT|O_EXCL|O_NOFOLLOW (never through a planted symlink), written,
// fsynced, made 0400 and renamed over the final name (rename replaces a
// planted symlink instead of following it), and the directory is fsynced.
// A reader therefore sees either the previous file, no file, or the complete
// new one, never a prefix.
//
// Decisions a demanding user would ask about:
//   - A pattern that matches no key is an error (ErrNoMatch), globs
//     included: the command expects its file, and starting it without one
//     is the silent failure the shim exists to prevent.
//   - Patterns match the final names, after --invalid-keys renamed them.
//   - KEY_FILE colliding with any other secret's name is an error naming
//     both; nothing is silently overwritten.
//   - The default directory, /run/secrets/phase-shim, is shared by every
//     shim in the container; the fallback under $TMPDIR is new for every
//     run (two commands never see each other's files). The shim execs the
//     command, so nobody removes the files afterwards: use a tmpfs.
//   - An existing directory is used only if it is a real directory owned
//     by us with mode 0700 (no group/other bits); it is never chmod'ed into
//     shape, since it may already have been exposed.
//
// Like the other library packages, deliver never prints and never exits; it
// returns warnings as strings and errors wrapping the sentinels below. Error
// messages carry key names, paths and sizes, never a value.
package deliver

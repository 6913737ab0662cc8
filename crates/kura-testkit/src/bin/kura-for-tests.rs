//! The `kura` command, built by the same `cargo test` as the integration suite (which gets
//! its path as `CARGO_BIN_EXE_kura-for-tests`): tests that run real `kura` processes need no
//! separate `cargo build` with its own feature resolution.

fn main() -> std::process::ExitCode {
    kura::main_entry()
}

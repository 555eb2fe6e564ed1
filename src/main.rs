//! The `walg` binary: everything happens in the library's `cli` layer.

fn main() -> std::process::ExitCode {
    walg::cli::main_entry()
}

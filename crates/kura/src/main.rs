fn main() -> std::process::ExitCode {
    kura::main_entry()
}

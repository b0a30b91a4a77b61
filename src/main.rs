fn main() -> std::process::ExitCode {
    hris_sync::cli::main()
}

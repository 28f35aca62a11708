use std::process::ExitCode;

fn main() -> ExitCode {
    omk::cli::main()
}

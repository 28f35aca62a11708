use std::process::ExitCode;

fn main() -> ExitCode {
    // The sandbox helper must run before anything starts a thread.
    let mut args = std::env::args_os();
    if args.nth(1).is_some_and(|a| a == omk::sandbox::HELPER_ARG) {
        omk::sandbox::jail::main(args.collect());
    }
    omk::sandbox::protect_self();
    omk::cli::main()
}

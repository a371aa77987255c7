use std::process::ExitCode;

fn main() -> ExitCode {
    config_drift_detector::cli::main()
}

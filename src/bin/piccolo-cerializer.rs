//! `piccolo-cerializer`: the REST/JSON gateway to a Piccolo store. `--help` lists the flags.

use std::process::ExitCode;

fn main() -> ExitCode {
    let config = match piccolo::gateway::Config::from_args(std::env::args().skip(1)) {
        Ok(Some(config)) => config,
        Ok(None) => return ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("piccolo-cerializer: {error}");
            return ExitCode::from(2);
        }
    };
    match piccolo::gateway::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("piccolo-cerializer: {error}");
            ExitCode::FAILURE
        }
    }
}

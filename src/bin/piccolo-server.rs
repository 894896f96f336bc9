//! `piccolo-server`: the Piccolo server. `piccolo-server --help` lists the flags.

use std::process::ExitCode;

fn main() -> ExitCode {
    let config = match piccolo::server::Config::from_args(std::env::args().skip(1)) {
        Ok(Some(config)) => config,
        Ok(None) => return ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("piccolo-server: {error}");
            return ExitCode::from(2);
        }
    };
    match piccolo::server::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("piccolo-server: {error}");
            ExitCode::FAILURE
        }
    }
}

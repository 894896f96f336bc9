//! Runs capnpc (which calls the `capnp` compiler on PATH) on schema/piccolo.capnp and writes the
//! generated Rust into the directory given as the only argument.
//!
//! The generated code lives in the piccolo crate at `crate::proto::capnp::piccolo_capnp`, so the
//! parent module is set accordingly: generated code names its own types by absolute paths.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(schema_dir), Some(out_dir), None) = (args.next(), args.next(), args.next()) else {
        eprintln!("usage: piccolo-schema-gen SCHEMA_DIR OUT_DIR");
        return ExitCode::from(2);
    };
    let schema_dir = PathBuf::from(schema_dir);
    let result = capnpc::CompilerCommand::new()
        .src_prefix(&schema_dir)
        .file(schema_dir.join("piccolo.capnp"))
        .output_path(PathBuf::from(out_dir))
        .default_parent_module(vec!["proto".into(), "capnp".into()])
        .run();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("capnpc failed: {error}");
            ExitCode::FAILURE
        }
    }
}

//! Runs capnpc (which calls the `capnp` compiler on PATH) on the schemas in schema/ and writes
//! the generated Rust into the directory given as the second argument.
//!
//! Generated code names its own types by absolute paths, so each file is compiled with the
//! parent module it lives in inside the piccolo crate:
//! - `piccolo.capnp` (client protocol) at `crate::proto::capnp::piccolo_capnp`;
//! - `peer.capnp` (Raft peer messages) at `crate::proto::peer::peer_capnp`.

use std::path::PathBuf;
use std::process::ExitCode;

/// Each schema file and the module path of the module that holds its generated code.
const SCHEMAS: [(&str, [&str; 2]); 2] = [
    ("piccolo.capnp", ["proto", "capnp"]),
    ("peer.capnp", ["proto", "peer"]),
];

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(schema_dir), Some(out_dir), None) = (args.next(), args.next(), args.next()) else {
        eprintln!("usage: piccolo-schema-gen SCHEMA_DIR OUT_DIR");
        return ExitCode::from(2);
    };
    let schema_dir = PathBuf::from(schema_dir);
    for (file, parent) in SCHEMAS {
        let result = capnpc::CompilerCommand::new()
            .src_prefix(&schema_dir)
            .file(schema_dir.join(file))
            .output_path(PathBuf::from(&out_dir))
            .default_parent_module(parent.iter().map(|part| part.to_string()).collect())
            .run();
        if let Err(error) = result {
            eprintln!("capnpc failed on {file}: {error}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

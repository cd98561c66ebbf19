//! `mlserve keys`: API keys and HTTP Basic users in the keys file.

use super::{Failure, KeysCommand};
use std::process::ExitCode;

/// `mlserve keys …`.
pub(super) fn run(command: KeysCommand) -> Result<ExitCode, Failure> {
    use mlserve::serve::auth::keys::KeysFile;
    let path = match &command {
        KeysCommand::Create { file, .. }
        | KeysCommand::AddUser { file, .. }
        | KeysCommand::List { file }
        | KeysCommand::Revoke { file, .. } => file.keys_file.clone(),
    };
    let mut keys = match KeysFile::load(&path) {
        Ok(keys) => keys,
        Err(error) => return Err(Failure::usage(error.to_string())),
    };
    match command {
        KeysCommand::Create { name, role, .. } => {
            let key = match keys.create_key(&name, role) {
                Ok(key) => key,
                Err(error) => return Err(Failure::usage(error.to_string())),
            };
            if let Err(error) = keys.save(&path) {
                return Err(Failure::usage(error.to_string()));
            }
            eprintln!(
                "created key '{name}' ({}) in {}; it is shown only now:",
                role.name(),
                path.display()
            );
            println!("{key}");
        }
        KeysCommand::AddUser { name, role, .. } => {
            let mut password = String::new();
            if let Err(error) = std::io::stdin().read_line(&mut password) {
                return Err(Failure::usage(format!(
                    "cannot read the password from standard input: {error}"
                )));
            }
            let password = password.trim_end_matches(['\r', '\n']);
            if let Err(error) = keys.add_user(&name, role, password) {
                return Err(Failure::usage(error.to_string()));
            }
            if let Err(error) = keys.save(&path) {
                return Err(Failure::usage(error.to_string()));
            }
            eprintln!(
                "added user '{name}' ({}) to {}",
                role.name(),
                path.display()
            );
        }
        KeysCommand::List { .. } => {
            for key in &keys.keys {
                println!(
                    "key  {:<24} {:<8} mls_{}_…  created {}",
                    key.name,
                    key.role.name(),
                    key.id,
                    key.created_at
                );
            }
            for user in &keys.users {
                println!(
                    "user {:<24} {:<8} created {}",
                    user.name,
                    user.role.name(),
                    user.created_at
                );
            }
        }
        KeysCommand::Revoke { name, .. } => {
            if !keys.revoke(&name) {
                return Err(Failure::usage(format!(
                    "no key or user named '{name}' in {}",
                    path.display()
                )));
            }
            if let Err(error) = keys.save(&path) {
                return Err(Failure::usage(error.to_string()));
            }
            eprintln!("revoked '{name}'; restart running servers to apply");
        }
    }
    Ok(ExitCode::SUCCESS)
}

//! omk turns one engineering goal into a proof-backed run.
//!
//! A goal is split into slices (see [`plan`]). Each slice runs in its own git
//! worktree with its own agent process ([`agent`]), is committed and checked
//! against its write scope, verified by gates ([`gate`]), and merged by a
//! deterministic integrator into one branch. The run is driven by actors
//! ([`actors`]) that report everything they do as events ([`store::events`]);
//! the goal's state, and so its proof, is a fold over those events
//! ([`state`]).
//!
//! The binary (`src/main.rs`) is a thin shell over [`cli`].

pub mod actors;
pub mod agent;
pub mod capture;
pub mod cli;
pub mod config;
pub mod deliver;
pub mod error;
pub mod excerpt;
pub mod executor;
pub mod fault;
pub mod files;
pub mod gate;
pub mod git;
pub mod ids;
pub mod machine;
pub mod mcp;
pub mod plan;
pub mod planner;
pub mod pool;
pub mod process;
pub mod proof;
pub mod redact;
pub mod report;
pub mod review;
pub mod run;
pub mod sandbox;
pub mod setup;
pub mod shown;
pub mod state;
pub mod store;
pub mod verify;
pub mod words;

pub use error::{Error, Result};

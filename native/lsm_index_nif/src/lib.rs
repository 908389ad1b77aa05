//! The NIF library behind `LsmIndex.Native`: converts terms, holds indexes in resources and
//! maps core errors. No index logic lives here.
#![deny(unsafe_code)]

mod index;
mod timing;

rustler::init!("Elixir.LsmIndex.Native");

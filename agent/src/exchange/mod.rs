//! Where orders go: the [`paper`] exchange (the default), with exact decimal money, and for
//! `mode: live` Binance's spot API ([`binance`]), whose fills the paper book mirrors.

pub mod binance;
pub mod filters;
pub mod paper;

pub use paper::{
    ClosedTrade, FeeModel, OrderRejection, PaperExchange, Placement, Position, RestingOrder,
};

//! Where orders go: the [`paper`] exchange (the default), with exact decimal money.

pub mod paper;

pub use paper::{
    ClosedTrade, FeeModel, OrderRejection, PaperExchange, Placement, Position, RestingOrder,
};

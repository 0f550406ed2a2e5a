//! Binance's trading rules for a symbol, from `GET /api/v3/exchangeInfo`: the lot size (quantity
//! step, minimum and maximum; `MARKET_LOT_SIZE` for market orders), the price filter (tick size
//! and range, for limit orders) and the minimum notional (`MIN_NOTIONAL` or the newer `NOTIONAL`).
//!
//! An order is conformed before it is sent: its quantity is rounded down to the step and a limit
//! price to the tick on the passive side (a buy down, a sell up, so rounding never pays more than
//! the team decided). An order that still cannot meet a rule is refused with the rule and the
//! figures, and never reaches the exchange, which would reject it anyway (`-1013 Filter failure`).

use protocol::messages::{Order, OrderKind, Side};
use rust_decimal::{Decimal, RoundingStrategy};

/// The rules of one symbol. A step, tick or bound of zero means "no rule", as Binance writes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SymbolFilters {
    /// The symbol the rules are for (`BTCUSDT`).
    pub symbol: String,
    /// `LOT_SIZE`: the quantity rule for limit orders, and for market orders without a market lot.
    pub lot: Lot,
    /// `MARKET_LOT_SIZE`, for market orders, when the exchange sets one.
    pub market_lot: Option<Lot>,
    /// `PRICE_FILTER`'s `tickSize`: limit prices are multiples of it.
    pub tick_size: Decimal,
    /// `PRICE_FILTER`'s `minPrice`: the lowest limit price.
    pub min_price: Decimal,
    /// `PRICE_FILTER`'s `maxPrice`: the highest limit price (zero: no bound).
    pub max_price: Decimal,
    /// The least quantity × price an order may have, and whether market orders are held to it.
    pub min_notional: Option<(Decimal, bool)>,
    /// `baseAsset` (`BTC` of `BTCUSDT`): the account balance that is the position.
    pub base_asset: Option<String>,
}

/// A lot-size rule.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Lot {
    /// `stepSize`: quantities are multiples of it (rounded down to it).
    pub step: Decimal,
    /// `minQty`: the least quantity.
    pub min: Decimal,
    /// `maxQty`: the greatest quantity (zero: no bound).
    pub max: Decimal,
}

/// Why `exchangeInfo` could not be read for a symbol.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum InfoError {
    #[error("exchangeInfo has no symbol {0}")]
    /// The reply does not list the symbol.
    UnknownSymbol(String),
    #[error(
        "exchangeInfo for {symbol}: filter {filter}: field {field} is missing or not a number"
    )]
    /// A filter the rules need lacks a field, or has one that is not a decimal string.
    BadField {
        /// The symbol.
        symbol: String,
        /// The filter's `filterType`.
        filter: String,
        /// The field (`stepSize`, `minQty`, `tickSize`, `minNotional`, ...).
        field: &'static str,
    },
    #[error("exchangeInfo for {symbol}: the symbol is {status}, not TRADING")]
    /// The symbol is listed but not open for trading.
    NotTrading {
        /// The symbol.
        symbol: String,
        /// Its status instead of `TRADING` (`BREAK`, `HALT`, ...).
        status: String,
    },
}

/// Why an order was refused before it was sent.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FilterRefusal {
    #[error("{filter}: quantity {quantity} is below minQty {min}")]
    /// The quantity, rounded down to the step, is zero or under `minQty`.
    BelowMinQuantity {
        /// `LOT_SIZE` or `MARKET_LOT_SIZE`.
        filter: &'static str,
        /// The order's quantity, before rounding.
        quantity: Decimal,
        /// The rule's `minQty`.
        min: Decimal,
    },
    #[error("{filter}: quantity {quantity} is above maxQty {max}")]
    /// The quantity, rounded down to the step, is over `maxQty`.
    AboveMaxQuantity {
        /// `LOT_SIZE` or `MARKET_LOT_SIZE`.
        filter: &'static str,
        /// The rounded quantity.
        quantity: Decimal,
        /// The rule's `maxQty`.
        max: Decimal,
    },
    #[error("PRICE_FILTER: limit price {price} is outside [{min}, {max}]")]
    /// The limit price, on the tick, is zero or outside the price filter's range.
    PriceOutOfRange {
        /// The limit price after rounding to the tick.
        price: Decimal,
        /// `minPrice`.
        min: Decimal,
        /// `maxPrice` (zero: no bound).
        max: Decimal,
    },
    #[error("{filter}: {value} on a step of {step} is beyond exact decimal arithmetic")]
    /// Rounding to the step would overflow `Decimal` (a huge value on a tiny step).
    Unrepresentable {
        /// `LOT_SIZE`, `MARKET_LOT_SIZE` or `PRICE_FILTER`.
        filter: &'static str,
        /// The quantity or price being rounded.
        value: Decimal,
        /// The step or tick it was rounded to.
        step: Decimal,
    },
    #[error("NOTIONAL: {quantity} × {price} overflows exact decimal arithmetic")]
    /// Quantity × price overflows `Decimal`.
    NotionalOverflow {
        /// The rounded quantity.
        quantity: Decimal,
        /// The limit price, or the reference price for a market order.
        price: Decimal,
    },
    #[error("NOTIONAL: {quantity} × {price} = {notional} is below minNotional {min}")]
    /// Quantity × price is under the minimum notional.
    BelowMinNotional {
        /// The rounded quantity.
        quantity: Decimal,
        /// The limit price, or the reference price for a market order.
        price: Decimal,
        /// Their product, in the quote asset.
        notional: Decimal,
        /// `minNotional`, in the quote asset.
        min: Decimal,
    },
}

impl SymbolFilters {
    /// The rules of `symbol` in an `exchangeInfo` reply.
    pub fn from_exchange_info(symbol: &str, info: &serde_json::Value) -> Result<Self, InfoError> {
        let entry = info["symbols"]
            .as_array()
            .and_then(|all| all.iter().find(|s| s["symbol"] == symbol))
            .ok_or_else(|| InfoError::UnknownSymbol(symbol.to_string()))?;
        if let Some(status) = entry["status"].as_str().filter(|s| *s != "TRADING") {
            return Err(InfoError::NotTrading {
                symbol: symbol.to_string(),
                status: status.to_string(),
            });
        }
        let mut rules = Self {
            symbol: symbol.to_string(),
            base_asset: entry["baseAsset"].as_str().map(str::to_string),
            ..Self::default()
        };
        for filter in entry["filters"].as_array().into_iter().flatten() {
            rules.read(filter)?;
        }
        Ok(rules)
    }

    fn read(&mut self, filter: &serde_json::Value) -> Result<(), InfoError> {
        let kind = filter["filterType"].as_str().unwrap_or_default();
        let number = |field: &'static str| -> Result<Decimal, InfoError> {
            filter[field]
                .as_str()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| InfoError::BadField {
                    symbol: self.symbol.clone(),
                    filter: kind.to_string(),
                    field,
                })
        };
        let lot = || -> Result<Lot, InfoError> {
            Ok(Lot {
                step: number("stepSize")?,
                min: number("minQty")?,
                max: number("maxQty")?,
            })
        };
        match kind {
            "LOT_SIZE" => self.lot = lot()?,
            "MARKET_LOT_SIZE" => self.market_lot = Some(lot()?),
            "PRICE_FILTER" => {
                self.tick_size = number("tickSize")?;
                self.min_price = number("minPrice")?;
                self.max_price = number("maxPrice")?;
            }
            // the older filter: `applyToMarket`; the newer: `applyMinToMarket`
            "MIN_NOTIONAL" | "NOTIONAL" => {
                let to_market = filter["applyToMarket"]
                    .as_bool()
                    .or_else(|| filter["applyMinToMarket"].as_bool())
                    .unwrap_or(true);
                self.min_notional = Some((number("minNotional")?, to_market));
            }
            _ => {}
        }
        Ok(())
    }

    /// `order` conformed to the rules, priced (for the notional of a market order) at
    /// `reference_price`; or why it cannot be sent.
    pub fn conform(&self, order: &Order, reference_price: Decimal) -> Result<Order, FilterRefusal> {
        let market = order.kind == OrderKind::Market;
        let (lot, lot_name) = match self.market_lot.filter(|l| market && !l.step.is_zero()) {
            Some(l) => (l, "MARKET_LOT_SIZE"),
            None => (self.lot, "LOT_SIZE"),
        };
        let quantity = round_to(order.quantity, lot.step, RoundingStrategy::ToZero).ok_or(
            FilterRefusal::Unrepresentable {
                filter: lot_name,
                value: order.quantity,
                step: lot.step,
            },
        )?;
        if quantity < lot.min || quantity.is_zero() {
            return Err(FilterRefusal::BelowMinQuantity {
                filter: lot_name,
                quantity: order.quantity,
                min: lot.min,
            });
        }
        if !lot.max.is_zero() && quantity > lot.max {
            return Err(FilterRefusal::AboveMaxQuantity {
                filter: lot_name,
                quantity,
                max: lot.max,
            });
        }
        let limit_price = order
            .limit_price
            .map(|p| self.conform_price(p, order.side))
            .transpose()?;
        if let Some(price) = limit_price {
            let too_high = !self.max_price.is_zero() && price > self.max_price;
            if price < self.min_price || too_high || price.is_zero() {
                return Err(FilterRefusal::PriceOutOfRange {
                    price,
                    min: self.min_price,
                    max: self.max_price,
                });
            }
        }
        let price = limit_price.unwrap_or(reference_price);
        if let Some((min, to_market)) = self.min_notional {
            let notional = quantity
                .checked_mul(price)
                .ok_or(FilterRefusal::NotionalOverflow { quantity, price })?;
            if (to_market || !market) && notional < min {
                return Err(FilterRefusal::BelowMinNotional {
                    quantity,
                    price: price.normalize(),
                    notional: notional.normalize(),
                    min: min.normalize(),
                });
            }
        }
        Ok(Order {
            quantity,
            limit_price,
            ..order.clone()
        })
    }

    /// A limit price on the tick, rounded to the passive side.
    fn conform_price(&self, price: Decimal, side: Side) -> Result<Decimal, FilterRefusal> {
        let strategy = match side {
            Side::Buy => RoundingStrategy::ToNegativeInfinity,
            Side::Sell => RoundingStrategy::ToPositiveInfinity,
        };
        round_to(price, self.tick_size, strategy).ok_or(FilterRefusal::Unrepresentable {
            filter: "PRICE_FILTER",
            value: price,
            step: self.tick_size,
        })
    }
}

impl SymbolFilters {
    /// `quantity` rounded down to the lot step (what an order could carry); `None` past
    /// `Decimal`'s range.
    pub fn lot_floor(&self, quantity: Decimal) -> Option<Decimal> {
        round_to(quantity, self.lot.step, RoundingStrategy::ToZero)
    }
}

/// `value` on a multiple of `step` (unchanged when the step is zero), normalised so that the
/// exchange reads no more decimals than the step has; `None` when the steps would overflow
/// `Decimal` (a huge value on a tiny step).
fn round_to(value: Decimal, step: Decimal, strategy: RoundingStrategy) -> Option<Decimal> {
    if step.is_zero() {
        return Some(value);
    }
    let steps = value.checked_div(step)?.round_dp_with_strategy(0, strategy);
    Some(steps.checked_mul(step)?.normalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::stream::arbitrary::{decimal, json, mutate};
    use proptest::prelude::*;
    use serde_json::{json, Value};

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    /// BTCUSDT's rules as Binance's spot API lists them (trimmed to the filters read here).
    fn btcusdt() -> SymbolFilters {
        let info = serde_json::json!({"symbols": [{"symbol": "BTCUSDT", "status": "TRADING", "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000", "tickSize": "0.01000000"},
            {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "120.0", "stepSize": "0.00000000"},
            {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": true,
             "maxNotional": "9000000.00000000", "applyMaxToMarket": false, "avgPriceMins": 5}
        ]}]});
        SymbolFilters::from_exchange_info("BTCUSDT", &info).unwrap()
    }

    fn order(kind: OrderKind, side: Side, quantity: &str, limit: Option<&str>) -> Order {
        Order {
            decision_id: "d".into(),
            strategy: "s".into(),
            symbol: "BTCUSDT".into(),
            side,
            kind,
            quantity: d(quantity),
            limit_price: limit.map(d),
            at: 0,
        }
    }

    #[test]
    fn reads_the_lot_price_and_notional_rules() {
        let f = btcusdt();
        assert_eq!(
            f.lot,
            Lot {
                step: d("0.00001"),
                min: d("0.00001"),
                max: d("9000")
            }
        );
        assert_eq!(f.tick_size, d("0.01"));
        assert_eq!(f.min_notional, Some((d("5"), true)));
        assert_eq!(f.market_lot.unwrap().max, d("120"));
    }

    #[test]
    fn quantities_round_down_to_the_step_and_prices_to_the_passive_tick() {
        let f = btcusdt();
        let market = f
            .conform(
                &order(OrderKind::Market, Side::Buy, "0.123456789", None),
                d("60000"),
            )
            .unwrap();
        assert_eq!(market.quantity.to_string(), "0.12345");
        let buy = f
            .conform(
                &order(OrderKind::Limit, Side::Buy, "0.1", Some("60000.019")),
                d("60000"),
            )
            .unwrap();
        assert_eq!(buy.limit_price, Some(d("60000.01")));
        let sell = f
            .conform(
                &order(OrderKind::Limit, Side::Sell, "0.1", Some("60000.011")),
                d("60000"),
            )
            .unwrap();
        assert_eq!(sell.limit_price, Some(d("60000.02")));
    }

    #[test]
    fn values_beyond_decimal_arithmetic_are_refused_not_a_panic() {
        assert_eq!(
            round_to(Decimal::MAX, d("0.00000001"), RoundingStrategy::ToZero),
            None
        );
        let mut f = btcusdt();
        f.lot.max = Decimal::ZERO; // no upper bound: only the arithmetic stops it
        let e = f
            .conform(
                &order(
                    OrderKind::Market,
                    Side::Buy,
                    "7000000000000000000000000000",
                    None,
                ),
                d("60000"),
            )
            .unwrap_err();
        assert!(
            matches!(
                e,
                FilterRefusal::Unrepresentable { .. } | FilterRefusal::NotionalOverflow { .. }
            ),
            "{e}"
        );
    }

    #[test]
    fn orders_that_cannot_meet_a_rule_are_refused_with_the_figures() {
        let f = btcusdt();
        let tiny = f.conform(
            &order(OrderKind::Market, Side::Buy, "0.000004", None),
            d("60000"),
        );
        assert!(matches!(
            tiny,
            Err(FilterRefusal::BelowMinQuantity {
                filter: "LOT_SIZE",
                ..
            })
        ));
        let small = f
            .conform(
                &order(OrderKind::Market, Side::Buy, "0.00005", None),
                d("60000"),
            )
            .unwrap_err();
        assert_eq!(
            small.to_string(),
            "NOTIONAL: 0.00005 × 60000 = 3 is below minNotional 5"
        );
        let huge = f.conform(
            &order(OrderKind::Market, Side::Sell, "10000", None),
            d("60000"),
        );
        assert!(matches!(
            huge,
            Err(FilterRefusal::AboveMaxQuantity {
                filter: "LOT_SIZE",
                ..
            })
        ));
        let priced_out = f.conform(
            &order(OrderKind::Limit, Side::Buy, "1", Some("2000000")),
            d("60000"),
        );
        assert!(matches!(
            priced_out,
            Err(FilterRefusal::PriceOutOfRange { .. })
        ));
    }

    #[test]
    fn unknown_halted_or_malformed_symbols_are_errors_naming_them() {
        let info = serde_json::json!({"symbols": [
            {"symbol": "OLDUSDT", "status": "BREAK", "filters": []},
            {"symbol": "BADUSDT", "status": "TRADING", "filters": [{"filterType": "LOT_SIZE", "minQty": 1}]}
        ]});
        assert_eq!(
            SymbolFilters::from_exchange_info("BTCUSDT", &info).unwrap_err(),
            InfoError::UnknownSymbol("BTCUSDT".into())
        );
        assert!(SymbolFilters::from_exchange_info("OLDUSDT", &info)
            .unwrap_err()
            .to_string()
            .contains("BREAK, not TRADING"));
        assert_eq!(
            SymbolFilters::from_exchange_info("BADUSDT", &info)
                .unwrap_err()
                .to_string(),
            "exchangeInfo for BADUSDT: filter LOT_SIZE: field stepSize is missing or not a number"
        );
    }

    fn small(max: i64, scale: u32) -> impl Strategy<Value = Decimal> + Clone {
        (1..max, 0..=scale).prop_map(|(m, s)| Decimal::new(m, s))
    }

    /// A bound, step or tick: zero ("no rule") or a positive decimal.
    fn rule() -> impl Strategy<Value = Decimal> {
        prop_oneof![1 => Just(Decimal::ZERO), 4 => small(1_000_000, 8)]
    }

    fn lot() -> impl Strategy<Value = Lot> {
        (rule(), rule(), rule()).prop_map(|(step, min, max)| Lot { step, min, max })
    }

    /// An `exchangeInfo` reply listing BTCUSDT among others, and the rules it sets.
    fn arb_info() -> impl Strategy<Value = (Value, SymbolFilters)> {
        let notional = (
            small(1_000_000, 4),
            prop::option::of(any::<bool>()),
            any::<bool>(),
        );
        (
            lot(),
            prop::option::of(lot()),
            prop::array::uniform3(rule()),
            prop::option::of(notional),
        )
            .prop_map(|(lot, market_lot, [tick_size, min_price, max_price], notional)| {
                let lot_filter = |kind: &str, l: &Lot| json!({"filterType": kind,
                    "stepSize": l.step.to_string(), "minQty": l.min.to_string(), "maxQty": l.max.to_string()});
                let mut filters = vec![
                    json!({"filterType": "ICEBERG_PARTS", "limit": 10}),
                    lot_filter("LOT_SIZE", &lot),
                    json!({"filterType": "PRICE_FILTER", "tickSize": tick_size.to_string(),
                        "minPrice": min_price.to_string(), "maxPrice": max_price.to_string()}),
                ];
                filters.extend(market_lot.map(|l| lot_filter("MARKET_LOT_SIZE", &l)));
                let min_notional = notional.map(|(min, to_market, older)| {
                    let (kind, flag) = if older {
                        ("MIN_NOTIONAL", "applyToMarket")
                    } else {
                        ("NOTIONAL", "applyMinToMarket")
                    };
                    let mut filter = json!({"filterType": kind, "minNotional": min.to_string()});
                    if let Some(to_market) = to_market {
                        filter[flag] = Value::from(to_market);
                    }
                    filters.push(filter);
                    (min, to_market.unwrap_or(true))
                });
                let info = json!({"symbols": [
                    {"symbol": "ETHUSDT", "status": "BREAK", "filters": []},
                    {"symbol": "BTCUSDT", "status": "TRADING", "filters": filters}]});
                let rules = SymbolFilters {
                    symbol: "BTCUSDT".into(),
                    lot,
                    market_lot,
                    tick_size,
                    min_price,
                    max_price,
                    min_notional,
                    base_asset: None,
                };
                (info, rules)
            })
    }

    fn arb_order(amount: impl Strategy<Value = Decimal> + Clone) -> impl Strategy<Value = Order> {
        (
            prop::sample::select(vec![Side::Buy, Side::Sell]),
            amount.clone(),
            prop::option::of(amount),
        )
            .prop_map(|(side, quantity, limit_price)| Order {
                kind: match limit_price {
                    Some(_) => OrderKind::Limit,
                    None => OrderKind::Market,
                },
                quantity,
                limit_price,
                ..order(OrderKind::Market, side, "1", None)
            })
    }

    /// What a conformed order must be: on the step and within the lot, its limit price on the
    /// tick, on the passive side and within the price filter, the rest unchanged.
    fn check_conformed(
        rules: &SymbolFilters,
        order: &Order,
        out: &Order,
    ) -> Result<(), TestCaseError> {
        let market = order.kind == OrderKind::Market;
        let lot = rules
            .market_lot
            .filter(|l| market && !l.step.is_zero())
            .unwrap_or(rules.lot);
        prop_assert!(out.quantity > Decimal::ZERO && out.quantity <= order.quantity);
        prop_assert!(out.quantity >= lot.min && (lot.max.is_zero() || out.quantity <= lot.max));
        prop_assert!(lot.step.is_zero() || (out.quantity % lot.step).is_zero());
        match (order.limit_price, out.limit_price) {
            (None, None) => {}
            (Some(asked), Some(price)) => {
                let passive = match order.side {
                    Side::Buy => price <= asked,
                    Side::Sell => price >= asked,
                };
                prop_assert!(passive, "{} for {}", price, asked);
                prop_assert!(rules.tick_size.is_zero() || (price % rules.tick_size).is_zero());
                prop_assert!(price > Decimal::ZERO && price >= rules.min_price);
                prop_assert!(rules.max_price.is_zero() || price <= rules.max_price);
            }
            other => prop_assert!(false, "limit prices {:?}", other),
        }
        prop_assert_eq!(
            (&out.decision_id, out.side, out.kind),
            (&order.decision_id, order.side, order.kind)
        );
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The rules read back exactly, and every order they let through is conformed to them.
        #[test]
        fn rules_read_back_and_conform_orders((info, rules) in arb_info(), order in arb_order(small(1_000_000_000_000, 12)), reference in small(1_000_000_000, 8)) {
            prop_assert_eq!(SymbolFilters::from_exchange_info("BTCUSDT", &info), Ok(rules.clone()));
            if let Ok(out) = rules.conform(&order, reference) {
                check_conformed(&rules, &order, &out)?;
            }
        }

        /// A reply with any field replaced by any JSON value, or removed, or no reply at all: rules
        /// or an error, and whatever rules come out conform orders of any size without a panic.
        #[test]
        fn mutated_info_and_extreme_orders_never_panic((mut info, _) in arb_info(), node in any::<usize>(), by in prop::option::of(json()), garbage in json(), order in arb_order(decimal()), reference in decimal()) {
            let _ = SymbolFilters::from_exchange_info("BTCUSDT", &garbage);
            mutate(&mut info, node, by);
            if let Ok(rules) = SymbolFilters::from_exchange_info("BTCUSDT", &info) {
                let _ = rules.conform(&order, reference);
            }
        }
    }
}

"""The simulated trade server's symbol catalog: MT5 specifications plus how each symbol trades.

The specs follow what retail MT5 brokers typically configure (ESMA-style margin rates for CFDs,
Wednesday triple swap for FX and metals, Friday for CFDs) so that margin, profit and conversion
code in the risk core meets the same variety it would meet on a real server: quote currencies
USD, JPY, CHF, CAD, GBP, EUR, AUD and NZD; margin in base, profit or a fixed futures amount.

`tick_value` is the value of one tick for one lot in the profit currency
(contract size x tick size, except for futures where the exchange fixes it). CFD Index symbols
keep a contract size of 1 (tick value = tick size), because MT5's CFD Index margin multiplies the
contract size by TickValue / TickSize; JP225 (100 JPY a point) is therefore a plain CFD.

FX start prices are derived from one table of USD values per currency so that crosses are
consistent with the majors (EURJPY = EURUSD x USDJPY); the market keeps them consistent by
pricing every FX pair from per-currency random walks. The FX set includes every pair needed to
convert any profit or margin currency into USD and into EUR, the two deposit currencies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from veles.risk.instruments import CalcMode, MarginRates, SwapMode, SymbolSpec

#: USD value of one unit of each currency at the start of a session.
USD_VALUES: Mapping[str, float] = MappingProxyType(
    {
        "USD": 1.0,
        "EUR": 1.0850,
        "GBP": 1.2700,
        "JPY": 1.0 / 151.50,
        "CHF": 1.0 / 0.8820,
        "AUD": 0.6550,
        "CAD": 1.0 / 1.3580,
        "NZD": 0.6050,
    }
)

#: Annualised volatility of each currency's value and its loading on a regional bloc factor and
#: on the equity (risk-on) factor. USD and JPY move alone; JPY is a safe haven (falls with risk-on).
CURRENCY_DRIVERS: Mapping[str, tuple[float, str, float, float]] = MappingProxyType(
    {
        # currency: (volatility, bloc, bloc loading, equity loading)
        "USD": (0.050, "", 0.0, -0.1),
        "EUR": (0.050, "europe", 0.7, 0.0),
        "GBP": (0.060, "europe", 0.5, 0.1),
        "CHF": (0.055, "europe", 0.6, -0.2),
        "JPY": (0.070, "", 0.0, -0.35),
        "AUD": (0.075, "commodity", 0.6, 0.35),
        "NZD": (0.080, "commodity", 0.6, 0.3),
        "CAD": (0.050, "commodity", 0.4, 0.2),
    }
)

WEDNESDAY_TRIPLE = (0.0, 1.0, 1.0, 3.0, 1.0, 1.0, 0.0)
FRIDAY_TRIPLE = (0.0, 1.0, 1.0, 1.0, 1.0, 3.0, 0.0)


@dataclass(frozen=True, slots=True)
class Listing:
    """A symbol as the simulated server trades it: its MT5 spec and its market behaviour.

    `spread` is the typical calm-market spread in ticks; `volatility` is annualised (used for
    non-FX symbols, FX pairs take theirs from the currencies); `factor` names the common driver a
    non-FX symbol loads on with `factor_share` of its variance; `tick_rate` is ticks per second in
    a calm market.
    """

    spec: SymbolSpec
    price: float
    spread: int
    tick_rate: float
    volatility: float = 0.0
    factor: str = ""
    factor_share: float = 0.0

    @property
    def is_fx(self) -> bool:
        """FX pairs are priced from currency values, everything else from its own walk."""
        return self.spec.asset_class == "fx"


def fx_price(base: str, quote: str) -> float:
    """Start price of an FX pair from the USD value table."""
    return USD_VALUES[base] / USD_VALUES[quote]


def _fx(pair: str, spread: int, tick_rate: float, swap_long: float, swap_short: float) -> Listing:
    base, quote = pair[:3], pair[3:]
    digits = 3 if quote == "JPY" else 5
    tick = 10.0**-digits
    spec = SymbolSpec(
        name=pair,
        calc_mode=CalcMode.FOREX,
        contract_size=100_000.0,
        digits=digits,
        tick_size=tick,
        tick_value=round(100_000.0 * tick, 6),
        base_currency=base,
        profit_currency=quote,
        margin_currency=base,
        margin_hedged=50_000.0,
        swap_mode=SwapMode.POINTS,
        swap_long=swap_long,
        swap_short=swap_short,
        swap_triple_day=3,
        swap_day_multipliers=WEDNESDAY_TRIPLE,
        asset_class="fx",
        volume_min=0.01,
        volume_step=0.01,
        volume_max=100.0,
    )
    return Listing(spec=spec, price=round(fx_price(base, quote), digits), spread=spread, tick_rate=tick_rate)


def _cfd(
    name: str,
    *,
    asset_class: str,
    calc_mode: CalcMode,
    currency: str,
    base: str = "",
    price: float,
    digits: int,
    contract_size: float,
    margin_rate: float,
    spread: int,
    tick_rate: float,
    volatility: float,
    factor: str,
    factor_share: float,
    swap_mode: SwapMode,
    swap_long: float,
    swap_short: float,
    volume_min: float = 0.01,
    volume_step: float = 0.01,
    volume_max: float = 100.0,
) -> Listing:
    tick = 10.0**-digits
    friday = asset_class in {"index", "energy", "stock"}
    rates = MarginRates(initial=margin_rate)
    spec = SymbolSpec(
        name=name,
        calc_mode=calc_mode,
        contract_size=contract_size,
        digits=digits,
        tick_size=tick,
        tick_value=round(contract_size * tick, 8),
        base_currency=base or name,
        profit_currency=currency,
        margin_currency=currency,
        margin_hedged=contract_size / 2,
        buy_rates=rates,
        sell_rates=rates,
        swap_mode=swap_mode,
        swap_long=swap_long,
        swap_short=swap_short,
        swap_triple_day=5 if friday else 3,
        swap_day_multipliers=FRIDAY_TRIPLE if friday else WEDNESDAY_TRIPLE,
        asset_class=asset_class,
        volume_min=volume_min,
        volume_step=volume_step,
        volume_max=volume_max,
    )
    return Listing(
        spec=spec,
        price=round(price, digits),
        spread=spread,
        tick_rate=tick_rate,
        volatility=volatility,
        factor=factor,
        factor_share=factor_share,
    )


def _future(
    name: str,
    *,
    currency: str,
    price: float,
    digits: int,
    tick_size: float,
    tick_value: float,
    contract_size: float,
    margin_initial: float,
    margin_maintenance: float,
    spread: int,
    tick_rate: float,
    volatility: float,
    factor: str,
    factor_share: float,
) -> Listing:
    spec = SymbolSpec(
        name=name,
        calc_mode=CalcMode.FUTURES,
        contract_size=contract_size,
        digits=digits,
        tick_size=tick_size,
        tick_value=tick_value,
        base_currency=name,
        profit_currency=currency,
        margin_currency=currency,
        margin_initial=margin_initial,
        margin_maintenance=margin_maintenance,
        margin_hedged=0.0,  # exchange spread margin: opposite legs of one contract offset fully
        swap_mode=SwapMode.DISABLED,
        asset_class="future",
        volume_min=1.0,
        volume_step=1.0,
        volume_max=500.0,
    )
    return Listing(
        spec=spec,
        price=round(round(price / tick_size) * tick_size, digits),
        spread=spread,
        tick_rate=tick_rate,
        volatility=volatility,
        factor=factor,
        factor_share=factor_share,
    )


def _build() -> tuple[Listing, ...]:
    fx = [
        _fx("EURUSD", 8, 3.0, -7.2, 1.9),
        _fx("GBPUSD", 12, 2.5, -4.1, -0.8),
        _fx("USDJPY", 10, 2.5, 15.6, -29.8),
        _fx("USDCHF", 12, 1.5, 5.4, -12.3),
        _fx("AUDUSD", 10, 1.5, -3.2, -1.1),
        _fx("USDCAD", 14, 1.2, 1.8, -8.6),
        _fx("NZDUSD", 16, 1.0, -2.7, -1.9),
        _fx("EURGBP", 12, 1.0, -5.0, 0.4),
        _fx("EURJPY", 15, 1.5, 9.1, -24.7),
        _fx("GBPJPY", 25, 1.5, 13.8, -33.5),
        _fx("AUDJPY", 18, 1.0, 7.9, -18.2),
        _fx("EURCHF", 16, 0.8, 1.3, -9.5),
        _fx("EURAUD", 20, 0.8, -11.6, 2.8),
        _fx("EURCAD", 22, 0.7, -8.9, 1.2),
        _fx("EURNZD", 30, 0.6, -14.2, 3.9),
        _fx("GBPCHF", 25, 0.7, 4.6, -15.1),
        _fx("CADJPY", 20, 0.7, 8.3, -19.6),
        _fx("CHFJPY", 22, 0.6, 2.1, -14.4),
        _fx("AUDNZD", 22, 0.5, -4.4, -2.6),
    ]
    leverage = CalcMode.CFD_LEVERAGE
    index = CalcMode.CFD_INDEX
    interest = SwapMode.INTEREST_CURRENT
    points = SwapMode.POINTS
    other = [
        _cfd("XAUUSD", asset_class="metal", calc_mode=leverage, currency="USD", base="XAU", price=2338.45,
             digits=2, contract_size=100.0, margin_rate=1.0, spread=25, tick_rate=3.5, volatility=0.15,
             factor="metals", factor_share=0.8, swap_mode=points, swap_long=-45.3, swap_short=22.1),
        _cfd("XAGUSD", asset_class="metal", calc_mode=leverage, currency="USD", base="XAG", price=27.615,
             digits=3, contract_size=5000.0, margin_rate=1.0, spread=25, tick_rate=1.5, volatility=0.28,
             factor="metals", factor_share=0.6, swap_mode=points, swap_long=-9.6, swap_short=3.2),
        _cfd("US500", asset_class="index", calc_mode=index, currency="USD", price=5204.30, digits=2,
             contract_size=1.0, margin_rate=0.05, spread=50, tick_rate=3.0, volatility=0.16,
             factor="equity", factor_share=0.9, swap_mode=interest, swap_long=-7.5, swap_short=2.4),
        _cfd("US30", asset_class="index", calc_mode=index, currency="USD", price=39127.0, digits=1,
             contract_size=1.0, margin_rate=0.05, spread=20, tick_rate=2.0, volatility=0.15,
             factor="equity", factor_share=0.85, swap_mode=interest, swap_long=-7.5, swap_short=2.4),
        _cfd("NAS100", asset_class="index", calc_mode=index, currency="USD", price=18120.50, digits=2,
             contract_size=1.0, margin_rate=0.05, spread=150, tick_rate=3.0, volatility=0.21,
             factor="equity", factor_share=0.85, swap_mode=interest, swap_long=-7.5, swap_short=2.4),
        _cfd("GER40", asset_class="index", calc_mode=index, currency="EUR", price=18215.3, digits=1,
             contract_size=1.0, margin_rate=0.05, spread=12, tick_rate=2.0, volatility=0.17,
             factor="equity", factor_share=0.75, swap_mode=interest, swap_long=-6.2, swap_short=0.9),
        _cfd("UK100", asset_class="index", calc_mode=index, currency="GBP", price=7934.6, digits=1,
             contract_size=1.0, margin_rate=0.05, spread=10, tick_rate=1.5, volatility=0.13,
             factor="equity", factor_share=0.7, swap_mode=interest, swap_long=-6.9, swap_short=1.6),
        _cfd("JP225", asset_class="index", calc_mode=CalcMode.CFD, currency="JPY", price=39740.0, digits=0,
             contract_size=100.0, margin_rate=0.05, spread=8, tick_rate=1.5, volatility=0.20,
             factor="equity", factor_share=0.6, swap_mode=interest, swap_long=-2.5, swap_short=-1.5),
        _cfd("XTIUSD", asset_class="energy", calc_mode=CalcMode.CFD, currency="USD", price=81.254, digits=3,
             contract_size=1000.0, margin_rate=0.10, spread=30, tick_rate=2.0, volatility=0.35,
             factor="oil", factor_share=0.9, swap_mode=points, swap_long=-8.4, swap_short=1.7),
        _cfd("XBRUSD", asset_class="energy", calc_mode=CalcMode.CFD, currency="USD", price=85.411, digits=3,
             contract_size=1000.0, margin_rate=0.10, spread=35, tick_rate=1.5, volatility=0.33,
             factor="oil", factor_share=0.9, swap_mode=points, swap_long=-7.9, swap_short=1.2),
        _cfd("XNGUSD", asset_class="energy", calc_mode=CalcMode.CFD, currency="USD", price=1.842, digits=3,
             contract_size=10000.0, margin_rate=0.10, spread=5, tick_rate=1.0, volatility=0.60,
             factor="oil", factor_share=0.1, swap_mode=points, swap_long=-2.9, swap_short=0.4),
        _cfd("AAPL", asset_class="stock", calc_mode=CalcMode.EXCHANGE_STOCKS, currency="USD", price=171.48,
             digits=2, contract_size=1.0, margin_rate=0.20, spread=4, tick_rate=1.0, volatility=0.26,
             factor="equity", factor_share=0.5, swap_mode=interest, swap_long=-8.0, swap_short=-3.0,
             volume_min=1.0, volume_step=1.0, volume_max=10_000.0),
        _cfd("TSLA", asset_class="stock", calc_mode=CalcMode.CFD, currency="USD", price=175.22, digits=2,
             contract_size=1.0, margin_rate=0.20, spread=8, tick_rate=1.0, volatility=0.55,
             factor="equity", factor_share=0.3, swap_mode=interest, swap_long=-8.0, swap_short=-3.0,
             volume_min=1.0, volume_step=1.0, volume_max=10_000.0),
        _cfd("SAP", asset_class="stock", calc_mode=CalcMode.EXCHANGE_STOCKS, currency="EUR", price=178.36,
             digits=2, contract_size=1.0, margin_rate=0.20, spread=6, tick_rate=0.6, volatility=0.24,
             factor="equity", factor_share=0.4, swap_mode=interest, swap_long=-7.0, swap_short=-2.5,
             volume_min=1.0, volume_step=1.0, volume_max=10_000.0),
        _future("ES", currency="USD", price=5231.0, digits=2, tick_size=0.25, tick_value=12.5,
                contract_size=50.0, margin_initial=12_650.0, margin_maintenance=11_500.0, spread=1,
                tick_rate=2.0, volatility=0.16, factor="equity", factor_share=0.95),
        _future("CL", currency="USD", price=81.09, digits=2, tick_size=0.01, tick_value=10.0,
                contract_size=1000.0, margin_initial=6_200.0, margin_maintenance=5_650.0, spread=1,
                tick_rate=1.5, volatility=0.35, factor="oil", factor_share=0.95),
    ]  # fmt: skip
    return (*fx, *other)


LISTINGS: tuple[Listing, ...] = _build()
SYMBOL_SPECS: tuple[SymbolSpec, ...] = tuple(listing.spec for listing in LISTINGS)
LISTINGS_BY_NAME: Mapping[str, Listing] = MappingProxyType({item.spec.name: item for item in LISTINGS})

"""The `veles` command line: one entry point, a sub-command per job."""

from __future__ import annotations

import typer

from veles.cli import admin, bench, chaos, db, demo, doctor, engine, mt5, portal, reports, risk, stress, var

app = typer.Typer(help="Veles: real-time risk management for MetaTrader 5 brokerages.", no_args_is_help=True)
app.add_typer(admin.app, name="admin")
app.add_typer(db.app, name="db")
app.add_typer(risk.app, name="risk")
app.add_typer(bench.app, name="bench")
app.add_typer(reports.app, name="reports")
app.add_typer(mt5.app, name="mt5")
app.command("engine")(engine.run_engine)
app.command("demo")(demo.run_demo)
app.command("doctor")(doctor.run_doctor)
app.command("portal")(portal.run_portal)
app.command("chaos")(chaos.run_chaos)
app.command("stress")(stress.run_stress_command)
app.command("var")(var.run_var)

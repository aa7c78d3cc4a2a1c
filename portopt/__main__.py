from portopt.cli.main import app

app(prog_name="portopt")

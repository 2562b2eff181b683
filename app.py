from hrdfund import create_app

app = create_app()

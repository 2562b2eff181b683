# Read by the flask command inside this checkout; a deployment sets HRDFUND_ENV=production.
FLASK_APP=app
HRDFUND_ENV=development

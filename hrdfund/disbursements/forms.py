"""Forms of the money side."""

from flask_wtf import FlaskForm


class ReceiptForm(FlaskForm):
    """Confirms that a payment arrived; the button is the whole form."""

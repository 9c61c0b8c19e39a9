"""The servers mmserve is compared with, written the way a user would write them."""

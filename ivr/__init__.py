"""The phone line: FastAGI server on Asterisk and AMI client (callbacks, outbound, live calls)."""

"""Local test servers: a scripted HTTP/1.1 server and a real llama.cpp server."""

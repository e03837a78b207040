# An OpenAI-compatible vLLM server with prefix caching and tool-call parsing, for
#   trellis ... --model openai:http://127.0.0.1:8000/v1#<MODEL>
# Build and run (needs an NVIDIA GPU and the NVIDIA container toolkit):
#   docker build -f docker/vllm.Dockerfile -t trellis-vllm .
#   docker run --gpus all -p 8000:8000 -e MODEL=Qwen/Qwen2.5-Coder-7B-Instruct trellis-vllm
FROM vllm/vllm-openai:latest
ENV MODEL=Qwen/Qwen2.5-Coder-7B-Instruct
ENTRYPOINT ["/bin/sh", "-c", "exec vllm serve \"$MODEL\" --host 0.0.0.0 --port 8000 --enable-prefix-caching --enable-auto-tool-choice --tool-call-parser hermes"]

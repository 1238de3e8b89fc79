import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getLlama, LlamaLogLevel, type Llama, type LlamaModel, type Token } from 'node-llama-cpp';
import {
  TEST_MODEL_CHAT_TEMPLATE,
  TEST_MODEL_NAME,
  compileTestModelOptions,
  ensureTestModel,
  testModelPath,
  writeTestModel,
} from './test-model.js';
import { TOKEN_TYPE, buildTestVocab } from './test-vocab.js';

const SENTENCE = 'the cat sat on the mat';

let dir: string;
let modelPath: string;
let llama: Llama;
let model: LlamaModel;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'armature-test-model-'));
  modelPath = join(dir, 'model.gguf');
  await writeTestModel(modelPath);
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  model = await llama.loadModel({ modelPath });
});

afterAll(async () => {
  await model?.dispose();
  await llama?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function greedy(prompt: Token[], count: number): Promise<Token[]> {
  const context = await model.createContext({ contextSize: 256, threads: 1 });
  try {
    const out: Token[] = [];
    for await (const token of context.getSequence().evaluate(prompt, { temperature: 0 })) {
      out.push(token);
      if (out.length === count) break;
    }
    return out;
  } finally {
    await context.dispose();
  }
}

describe('test model on node-llama-cpp', () => {
  it('loads as a llama model with the chatml template', () => {
    const metadata = model.fileInfo.metadata;
    expect(metadata.general.architecture).toBe('llama');
    expect(metadata.general.name).toBe(TEST_MODEL_NAME);
    expect(metadata.tokenizer.chat_template).toBe(TEST_MODEL_CHAT_TEMPLATE);
    expect(model.fileInfo.tensorInfo).toHaveLength(3 + 2 * 9);
    expect(model.tokens.bos).toBe(1);
    expect(model.tokens.eos).toBe(2);
  });

  it('tokenizes English into word pieces and detokenizes it back exactly', async () => {
    const vocab = await buildTestVocab(compileTestModelOptions().vocabWords);
    const tokens = model.tokenize(SENTENCE);
    expect(tokens.map((t) => vocab.tokens[t])).toEqual(['▁the', '▁cat', '▁sat', '▁on', '▁the', '▁mat']);
    expect(model.detokenize(tokens)).toBe(SENTENCE);

    const mixed = 'Hello, World! 42 cats; x-y (z).';
    const mixedTokens = model.tokenize(mixed);
    expect(mixedTokens.every((t) => vocab.types[t] === TOKEN_TYPE.normal)).toBe(true);
    expect(model.detokenize(mixedTokens)).toBe(mixed);
  });

  it('reads <|im_start|> as one token only when special tokens are enabled', () => {
    const special = model.tokenize('<|im_start|>', true);
    expect(special).toHaveLength(1);
    expect(model.isSpecialToken(special[0])).toBe(true);
    expect(model.tokenize('<|im_start|>', false).length).toBeGreaterThan(1);
  });

  it('generates the same words greedily in two fresh contexts', async () => {
    const prompt = [model.tokens.bos!, ...model.tokenize(SENTENCE)];
    const first = await greedy(prompt, 16);
    const second = await greedy(prompt, 16);
    expect(first).toHaveLength(16);
    expect(second).toEqual(first);
    const text = model.detokenize(first, false, prompt);
    expect(text).toMatch(/^( [a-zA-Z]+){16}$/);
  });

  it('tokenizes identically when loaded vocabulary-only', async () => {
    const vocabOnly = await llama.loadModel({ modelPath, vocabOnly: true });
    try {
      const text = `<|im_start|>user\n${SENTENCE}, Hello!<|im_end|>`;
      expect(vocabOnly.tokenize(text, true)).toEqual(model.tokenize(text, true));
      const tokens = model.tokenize(SENTENCE);
      expect(vocabOnly.detokenize(tokens)).toBe(SENTENCE);
    } finally {
      await vocabOnly.dispose();
    }
  });
});

describe('writeTestModel', () => {
  it('writes identical bytes for the same options, different ones for another seed', async () => {
    const again = join(dir, 'again.gguf');
    await writeTestModel(again);
    const [a, b] = await Promise.all([readFile(modelPath), readFile(again)]);
    expect(b.equals(a)).toBe(true);

    const reseeded = join(dir, 'seed2.gguf');
    await writeTestModel(reseeded, { seed: 2, vocabWords: 100 });
    await writeTestModel(again, { seed: 1, vocabWords: 100 });
    const [c, d] = await Promise.all([readFile(reseeded), readFile(again)]);
    expect(c.length).toBe(d.length);
    expect(c.equals(d)).toBe(false);
  });

  it('rejects bad options', () => {
    expect(() => compileTestModelOptions({ heads: 3 })).toThrow(RangeError);
    expect(() => compileTestModelOptions({ kvHeads: 3 })).toThrow(RangeError);
    expect(() => compileTestModelOptions({ layers: 0 })).toThrow(RangeError);
    expect(() => compileTestModelOptions({ seed: 1.5 })).toThrow(RangeError);
    expect(testModelPath({ seed: 2 })).not.toBe(testModelPath());
    expect(() => compileTestModelOptions({ eosLike: -1 })).toThrow(RangeError);
  });

  it('names a model with eosLike apart, and keeps the names of those without', async () => {
    expect(testModelPath({ eosLike: 400 })).not.toBe(testModelPath());
    expect(testModelPath({ eosLike: undefined })).toBe(testModelPath());
    // EOS can only take a whole word's place (other rows of the output projection are zero).
    await expect(writeTestModel(join(tmpdir(), `armature-eos-${process.pid}.gguf`), { eosLike: 5 })).rejects.toThrow(
      /not a whole-word token/,
    );
  });
});

describe('ensureTestModel', () => {
  it('caches the default model under .armature/models in the repo root', async () => {
    const path = await ensureTestModel();
    expect(path).toBe(testModelPath());
    expect(path).toMatch(
      new RegExp(`\\${sep}\\.armature\\${sep}models\\${sep}armature-tiny-llama-[0-9a-f]{12}\\.gguf$`),
    );
    expect(await readFile(join(path, '..', '..', '..', 'package.json'), 'utf8')).toContain('"workspaces"');
    const sha = async (file: string) =>
      createHash('sha256')
        .update(await readFile(file))
        .digest('hex');
    expect(await sha(path)).toBe(await sha(modelPath));
    expect(await ensureTestModel({})).toBe(path);
  });
});

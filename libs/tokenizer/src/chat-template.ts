// Chat templates: turn a list of messages into the prompt tokens the model expects.
// Markers are encoded as special tokens; message content never is (no injection). Our own
// templates leave BOS to the caller (`tokenizer.bosTokenIds`); `gguf`, the model file's own
// template rendered by its tokenizer, includes it.
import { ArmatureError } from '@armature/runtime';
import type { ChatMessage, Tokenizer } from './types.js';

type Segment = { text: string; special: boolean };

const TEMPLATES: Record<string, (messages: readonly ChatMessage[]) => Segment[]> = {
  // ChatML (Qwen, many others): <|im_start|>role\ncontent<|im_end|>\n ... <|im_start|>assistant\n
  chatml: (messages) => {
    const out: Segment[] = [];
    for (const m of messages) {
      out.push({ text: '<|im_start|>', special: true }, { text: `${m.role}\n${m.content}`, special: false });
      out.push({ text: '<|im_end|>', special: true }, { text: '\n', special: false });
    }
    out.push({ text: '<|im_start|>', special: true }, { text: 'assistant\n', special: false });
    return out;
  },
  // Plain text, for models without a chat format.
  plain: (messages) => [
    { text: messages.map((m) => `${m.role}: ${m.content}`).join('\n') + '\nassistant:', special: false },
  ],
};

/** The model file's own template, rendered by the tokenizer (`Tokenizer.applyChat`). */
const GGUF_TEMPLATE = 'gguf';

/** Template ids this build knows. */
export const CHAT_TEMPLATES = [...Object.keys(TEMPLATES), GGUF_TEMPLATE];

/** Whether the template's tokens already start with the tokenizer's BOS tokens (only `gguf`'s do). */
export function chatTemplateIncludesBos(templateId: string): boolean {
  return templateId === GGUF_TEMPLATE;
}

/**
 * Whether every message's role and content reach the tokenizer verbatim, so that their bytes
 * bound the prompt's tokens from below: ours do; a GGUF's own template may drop or rewrite them.
 */
export function chatTemplateKeepsContent(templateId: string): boolean {
  return Object.hasOwn(TEMPLATES, templateId);
}

/**
 * Renders messages with a template and tokenizes the result (generation prompt added).
 * BOS is not included unless `chatTemplateIncludesBos(templateId)`.
 */
export function applyChatTemplate(
  templateId: string,
  messages: readonly ChatMessage[],
  tokenizer: Tokenizer,
): number[] {
  if (templateId === GGUF_TEMPLATE) {
    if (!tokenizer.applyChat) {
      throw new ArmatureError(
        'failed_precondition',
        'unknown_chat_template',
        `chat template "gguf" needs a tokenizer that carries one; ${JSON.stringify(tokenizer.id)} does not`,
      );
    }
    return tokenizer.applyChat(messages);
  }
  const template = TEMPLATES[templateId];
  if (!template) {
    throw new ArmatureError(
      'failed_precondition',
      'unknown_chat_template',
      `unknown chat template ${JSON.stringify(templateId)}`,
    );
  }
  const ids: number[] = [];
  for (const seg of template(messages)) {
    for (const id of seg.special ? tokenizer.encodeSpecial(seg.text) : tokenizer.encode(seg.text)) ids.push(id);
  }
  return ids;
}

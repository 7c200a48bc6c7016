/**
 * Asks for the master's access token (DIPS_TOKEN) when the API answers 401. Resolves with the token,
 * rejects when the user cancels. The token is kept in sessionStorage by api.js: gone with the tab.
 */
export function createTokenPrompt(dialog) {
  const form = dialog.querySelector('form');
  const input = dialog.querySelector('input[name="token"]');
  const refusedNote = dialog.querySelector('.token-refused');
  return (refused) =>
    new Promise((resolve, reject) => {
      refusedNote.hidden = !refused;
      input.value = '';
      const onSubmit = (event) => {
        event.preventDefault();
        const token = input.value.trim();
        if (!token) {
          input.setAttribute('aria-invalid', 'true');
          input.focus();
          return;
        }
        input.removeAttribute('aria-invalid');
        finish();
        dialog.close();
        resolve(token);
      };
      const onClose = () => {
        finish();
        reject(new Error('This master needs an access token; none was given.'));
      };
      const finish = () => {
        form.removeEventListener('submit', onSubmit);
        dialog.removeEventListener('close', onClose);
      };
      form.addEventListener('submit', onSubmit);
      dialog.addEventListener('close', onClose);
      dialog.showModal();
      input.focus();
    });
}
